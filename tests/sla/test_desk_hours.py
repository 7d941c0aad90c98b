"""Desk hours per weekday and closed days: settings page, CLI, audit, and the calendar reading them
(through the per-process lookup cache: at once in this process, within the TTL elsewhere)."""
from __future__ import annotations

import datetime as dt

import flask_babel
import pytest
from sqlalchemy import func, select, text

from helpdesk import lookup_cache
from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.sla import service as sla
from helpdesk.sla.calendar import TOKYO
from helpdesk.sla.models import ClosedDay, DeskSettings

WEEK = {"mon": "09:00-18:00", "tue": "09:00-18:00", "wed": "09:00-18:00", "thu": "09:00-18:00",
        "fri": "09:00-18:00", "sat": "", "sun": "", "public_holidays": "y", "year_end_closure": "y"}


def jst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


def _audits(db, action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action))


def test_parse_day_hours():
    assert sla.parse_day_hours("09:00-18:00") == [(dt.time(9), dt.time(18))]
    assert sla.parse_day_hours("１３：００〜１８：００, 9:00-12:00") == [(dt.time(9), dt.time(12)),
                                                                    (dt.time(13), dt.time(18))]
    assert sla.parse_day_hours("") == [] and sla.parse_day_hours("closed") == []
    for bad, words in (("9-18", "HH:MM"), ("18:00-09:00", "後に"), ("09:00-12:00,11:00-13:00", "重なって"),
                       ("25:00-26:00", "HH:MM"), ("09:00", "09:00-18:00")):
        with pytest.raises(sla.SlaError, match=words):
            sla.parse_day_hours(bad)
    assert sla.format_day_hours(sla.parse_day_hours("09:00-12:00, 13:00-24:00")) == "09:00-12:00, 13:00-24:00"


def test_hours_page_saves_audits_and_moves_new_due_dates(db, client, login, make_user, make_ticket):
    login(make_user(roles="supervisor"))
    page = client.get("/sla/closed-days").get_data(as_text=True)
    assert 'value="09:00-18:00"' in page and 'name="sat"' in page
    # Saturday opens 10:00-15:00; Monday has a lunch break.
    response = client.post("/sla/hours", data=dict(WEEK, mon="09:00-12:00, 13:00-18:00", sat="10:00-15:00"))
    assert response.status_code == 302
    assert _audits(db, "sla.desk_hours") == 1
    page = client.get("/sla/closed-days").get_data(as_text=True)
    assert 'value="09:00-12:00, 13:00-18:00"' in page and 'value="10:00-15:00"' in page
    # Friday 2026-10-09 17:00 P3 (240 min first response): 60 on Friday, 180 on Saturday from 10:00.
    t = make_ticket(created_at=jst(2026, 10, 9, 17))
    assert t.first_response_due_at == jst(2026, 10, 10, 13)
    # Monday: 09:00-12:00 then 13:00 - so 240 min from Mon 9:00 ends 14:00.
    m = make_ticket(created_at=jst(2026, 10, 5, 9))
    assert m.first_response_due_at == jst(2026, 10, 5, 14)


def test_hours_page_one_plain_error_per_field(db, client, login, make_user):
    login(make_user(roles="admin"))
    response = client.post("/sla/hours", data=dict(WEEK, tue="9:00-18時", wed="18:00-09:00"))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert page.count('id="tue-error"') == 1 and page.count('id="wed-error"') == 1
    assert "HH:MM" in page and "終了時刻は開始時刻より後にしてください。" in page
    assert 'value="9:00-18時"' in page  # what was typed stays in the field
    assert 'id="mon-error"' not in page
    closed = client.post("/sla/hours", data={k: "" for k in WEEK})
    assert closed.status_code == 400 and "少なくとも1つの曜日" in closed.get_data(as_text=True)
    assert _audits(db, "sla.desk_hours") == 0
    assert db.session.get(DeskSettings, 1) is None


def test_hours_page_is_for_supervisors(client, login, make_user):
    login(make_user(roles="agent"))
    assert client.post("/sla/hours", data=WEEK).status_code == 403


def test_english_page(client, login, make_user):
    login(make_user(roles="supervisor"))
    client.post("/lang", data={"lang": "en"})
    flask_babel.refresh()  # the test's app context outlives requests and keeps the first locale
    page = client.get("/sla/closed-days").get_data(as_text=True)
    assert "Desk hours" in page and "Monday" in page
    bad = client.post("/sla/hours", data=dict(WEEK, fri="18:00-09:00")).get_data(as_text=True)
    assert "The end time must be after the start time." in bad


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=["sla", *args])


def test_cli_hours_and_closed_days(app, db, make_ticket):
    result = _cli(app, "hours", "set", "--sat", "09:00-17:00", "--no-public-holidays")
    assert result.exit_code == 0, result.output
    assert "sat  09:00-17:00" in result.output and "mon  09:00-18:00" in result.output
    assert "public holidays closed: no" in result.output
    row = db.session.get(DeskSettings, 1)
    assert row.hours["5"] == [["09:00", "17:00"]] and row.public_holidays is False
    assert _audits(db, "sla.desk_hours") == 1
    # 2026-11-03 文化の日 now counts: Tue 09:00 + 240 min = 13:00.
    assert make_ticket(created_at=jst(2026, 11, 3, 9)).first_response_due_at == jst(2026, 11, 3, 13)
    bad = _cli(app, "hours", "set", "--mon", "18:00-09:00")
    assert bad.exit_code == 2 and "--mon" in bad.output and "終了時刻" in bad.output
    assert _cli(app, "hours", "show").output.splitlines()[0] == "mon  09:00-18:00"

    assert _cli(app, "closed-days", "add", "2026-10-06", "--reason", "システム更新").exit_code == 0
    assert _audits(db, "sla.closed_day_added") == 1
    assert "2026-10-06  システム更新" in _cli(app, "closed-days", "list").output
    assert make_ticket(created_at=jst(2026, 10, 6, 9)).first_response_due_at == jst(2026, 10, 7, 13)
    dup = _cli(app, "closed-days", "add", "2026-10-06")
    assert dup.exit_code == 1 and "既に休業日" in dup.output
    assert _cli(app, "closed-days", "add", "06/10/2026").exit_code == 2
    assert _cli(app, "closed-days", "remove", "2026-10-06").exit_code == 0
    assert _audits(db, "sla.closed_day_removed") == 1
    assert _cli(app, "closed-days", "remove", "2026-10-06").exit_code == 1
    assert db.session.scalar(select(ClosedDay)) is None


@pytest.fixture
def cache_on(app, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(lookup_cache, "_clock", lambda: now[0])
    lookup_cache.invalidate_all()
    app.config["LOOKUP_CACHE_SECONDS"] = 30
    yield now
    app.config["LOOKUP_CACHE_SECONDS"] = 0
    lookup_cache.invalidate_all()


def test_change_here_applies_at_once_elsewhere_within_the_ttl(db, cache_on):
    friday = jst(2026, 10, 9, 17)
    # Monday 10-12 is スポーツの日: Tuesday.
    assert sla.get_calendar(db.session).add_business_minutes(friday, 120) == jst(2026, 10, 13, 10)
    db.session.remove()
    sla.set_desk_hours(db.session, {0: [(dt.time(9), dt.time(18))], 4: [(dt.time(9), dt.time(18))],
                                    5: [(dt.time(9), dt.time(17))]}, Actor.system("test"))
    db.session.remove()
    # This process saved it: the next request uses Saturday at once.
    assert sla.get_calendar(db.session).add_business_minutes(friday, 120) == jst(2026, 10, 10, 10)
    db.session.remove()
    # Another process closes Saturday (raw SQL: this process's ORM events do not see it).
    db.session.execute(text("UPDATE sla_desk_settings SET hours = :h, version = version + 1"),
                       {"h": '{"0": [["09:00", "18:00"]], "4": [["09:00", "18:00"]]}'})
    db.session.execute(text("INSERT INTO sla_closed_days (day, reason, created_at) "
                            "VALUES ('2026-10-16', 'x', '2026-10-01 00:00:00')"))
    db.session.commit()
    db.session.remove()
    assert sla.get_calendar(db.session).add_business_minutes(friday, 120) == jst(2026, 10, 10, 10)
    cache_on[0] += 31
    db.session.remove()
    # Only Monday and Friday open; Monday 10-12 a holiday, Friday 10-16 closed: Monday 10-19.
    assert sla.get_calendar(db.session).add_business_minutes(friday, 120) == jst(2026, 10, 19, 10)
