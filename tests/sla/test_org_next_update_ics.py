"""SLA per client organisation, the "next update" target, and holidays imported from an iCal file."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.sla import service as sla
from helpdesk.sla.calendar import TOKYO
from helpdesk.sla.ical import IcsError, parse_holidays
from helpdesk.sla.models import ClosedDay, SlaClock
from helpdesk.tickets import service as tickets


def jst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


SYSTEM = Actor.system("test")


def test_organisation_policy_wins_over_role_and_category(db, make_org, make_ticket):
    clinic, other = make_org(kind="clinic"), make_org(kind="clinic")
    sla.save_policy(db.session, SYSTEM, priority="P3", role="clinic", category_code="login",
                    first_response_minutes=30, resolution_minutes=120)
    sla.save_policy(db.session, SYSTEM, priority="P3", organisation_id=clinic.id,
                    first_response_minutes=60, resolution_minutes=180)
    start = jst(2026, 10, 5, 9)
    mine = make_ticket(org=clinic, created_at=start, category="login")
    assert mine.first_response_due_at == jst(2026, 10, 5, 10)  # the organisation's 60, not the role's 30
    theirs = make_ticket(org=other, created_at=start, category="login")
    assert theirs.first_response_due_at == jst(2026, 10, 5, 9, 30)
    # The same scope twice is refused; another priority for the organisation is not its policy.
    with pytest.raises(sla.SlaError, match="既にあります"):
        sla.save_policy(db.session, SYSTEM, priority="P3", organisation_id=clinic.id,
                        first_response_minutes=10, resolution_minutes=20)
    db.session.rollback()
    assert make_ticket(org=clinic, created_at=start, priority="P1").first_response_due_at == jst(2026, 10, 5, 9, 30)


def _reply(db, ticket, user, at, public=True):
    comment = tickets.add_comment(db.session, ticket.id, "確認しています。", Actor(user.id, user.email), public=public)
    return comment


def test_next_update_window_restarts_on_each_agent_reply_and_the_sweep_marks_it(db, make_org, make_ticket, agent,
                                                                                 make_user):
    org = make_org(kind="municipality")
    sla.save_policy(db.session, SYSTEM, priority="P3", organisation_id=org.id, first_response_minutes=240,
                    resolution_minutes=5400, next_update_minutes=120, at_risk_percent=50)
    t = make_ticket(org=org)  # now: the reply below is stamped now as well
    clock = db.session.get(SlaClock, t.id)
    assert clock.next_update_minutes == 120 and clock.next_update_due_at is None  # nothing owed before a reply
    reply = _reply(db, t, agent, None)
    at = reply.created_at
    calendar = sla.get_calendar(db.session)
    db.session.refresh(clock)
    assert clock.next_update_due_at == calendar.add_business_minutes(at, 120)
    assert clock.next_update_risk_at == calendar.add_business_minutes(at, 60)
    # An internal note or the requester's reply does not restart it.
    due = clock.next_update_due_at
    tickets.add_comment(db.session, t.id, "メモ", Actor(agent.id, agent.email), public=False)
    db.session.refresh(clock)
    assert clock.next_update_due_at == due

    risk = sla.sweep(db.session, clock.next_update_risk_at + dt.timedelta(seconds=1), notify=False)
    assert risk.at_risk == [t.id] and risk.breached == []
    late = sla.sweep(db.session, due + dt.timedelta(seconds=1), notify=False)
    assert late.breached == [t.id] and late.next_update_breached == [t.id]
    db.session.refresh(t)
    assert t.sla_state == "breached" and sla.sla_state(t, due + dt.timedelta(minutes=1))[0] == "breached"
    assert sla.sweep(db.session, due + dt.timedelta(seconds=2), notify=False).breached == []  # idempotent
    # Resolved: nothing is owed any more.
    tickets.change_status(db.session, t.id, "resolved", Actor(agent.id, agent.email))
    db.session.refresh(clock)
    assert clock.next_update_due_at is None


def test_pending_does_not_count_and_a_requester_answer_opens_a_new_window(db, make_org, make_ticket, agent):
    org = make_org(kind="clinic")
    sla.save_policy(db.session, SYSTEM, priority="P3", organisation_id=org.id, first_response_minutes=240,
                    resolution_minutes=5400, next_update_minutes=60)
    t = make_ticket(org=org)
    _reply(db, t, agent, None)
    actor = Actor(agent.id, agent.email)
    tickets.change_status(db.session, t.id, "pending", actor)
    clock = db.session.get(SlaClock, t.id)
    far = clock.next_update_due_at + dt.timedelta(days=3)
    assert sla.sweep(db.session, far, notify=False).next_update_breached == []
    old_due = clock.next_update_due_at - dt.timedelta(days=30)  # a window long gone
    clock.next_update_due_at = old_due
    db.session.commit()
    requester = db.session.get(type(agent), t.requester_id)
    answer = tickets.add_comment(db.session, t.id, "返信します", Actor(requester.id, requester.email))
    db.session.refresh(t)
    db.session.refresh(clock)
    assert t.status == "open"
    assert clock.next_update_due_at == sla.get_calendar(db.session).add_business_minutes(answer.created_at, 60)


ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//holidays//JA\r
BEGIN:VEVENT\r
DTSTART;VALUE=DATE:20261030\r
SUMMARY:システム更新日\r
END:VEVENT\r
BEGIN:VEVENT\r
DTSTART;VALUE=DATE:20261228\r
DTEND;VALUE=DATE:20261230\r
SUMMARY:年末の\r
  休業\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_parse_holidays():
    days = parse_holidays(ICS.encode())
    assert [(h.day.isoformat(), h.summary) for h in days] == [
        ("2026-10-30", "システム更新日"), ("2026-12-28", "年末の 休業"), ("2026-12-29", "年末の 休業")]
    for text, line, words in (
            ("hello\n", 1, "BEGIN:VCALENDAR"),
            (ICS.replace("DTSTART;VALUE=DATE:20261030", "DTSTART;VALUE=DATE:2026-10-30"), 5, "読み取れません"),
            (ICS.replace("20261030", "20261332"), 5, "存在しない日付"),
            (ICS.replace("DTEND;VALUE=DATE:20261230", "DTEND;VALUE=DATE:20261201"), 10, "終了日"),
            (ICS.replace("END:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261228", "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261228"), 7, "閉じられていません")):
        with pytest.raises(IcsError) as caught:
            parse_holidays(text)
        assert caught.value.line == line and words in str(caught.value)
        if line:
            assert str(caught.value).startswith(f"{line}行目")
    with pytest.raises(IcsError, match="UTF-8"):
        parse_holidays(b"\xff\xfe\x00B")


def _audit_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog)
                             .where(AuditLog.action == "sla.closed_days_imported"))


def test_import_page_and_cli(app, db, client, login, make_user, make_ticket, tmp_path):
    sla.add_closed_day(db.session, dt.date(2026, 10, 30), "既存", SYSTEM)
    login(make_user(roles="supervisor"))
    response = client.post("/sla/closed-days/import", data={"ics": (io.BytesIO(ICS.encode()), "holidays.ics")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    days = dict(db.session.execute(select(ClosedDay.day, ClosedDay.reason)).all())
    assert days == {dt.date(2026, 10, 30): "既存", dt.date(2026, 12, 28): "年末の 休業",
                    dt.date(2026, 12, 29): "年末の 休業"}
    assert _audit_count(db) == 1
    # Friday 12-25 17:00: 60 min, then closed to 1/3 (weekend, imported days, year end), 180 min on 1/4.
    assert make_ticket(created_at=jst(2026, 12, 25, 17)).first_response_due_at == jst(2027, 1, 4, 12)
    bad = client.post("/sla/closed-days/import",
                      data={"ics": (io.BytesIO(ICS.replace("20261228", "2026122").encode()), "bad.ics")},
                      content_type="multipart/form-data")
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400 and 'id="ics-error"' in page and "9行目" in page
    assert client.post("/sla/closed-days/import", data={}, content_type="multipart/form-data").status_code == 400
    assert _audit_count(db) == 1

    path = tmp_path / "h.ics"
    path.write_text(ICS.replace("20261030", "20261106"), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["sla", "closed-days", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "closed days added: 1, already closed: 2" in result.output
    path.write_text(ICS.replace("DTSTART;VALUE=DATE:20261030", "DTSTART;VALUE=DATE:x"), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["sla", "closed-days", "import", str(path)])
    assert result.exit_code == 1 and "5行目" in result.output
    assert _audit_count(db) == 2


def test_policy_page_with_organisation_and_next_update(db, client, login, make_user, make_org):
    org = make_org(kind="wholesaler", code="W-0001", name="東都薬品")
    login(make_user(roles="admin"))
    base = {"priority": "P2", "role": "", "category": "", "first_response_mins": "30",
            "resolution_hours": "4", "at_risk_percent": "75"}
    response = client.post("/sla/policies", data=dict(base, organisation_code="W-0001", next_update_hours="1",
                                                      next_update_mins="30"))
    assert response.status_code == 302
    page = client.get("/sla/policies").get_data(as_text=True)
    assert "東都薬品（W-0001）" in page and "<td>1時間30分</td>" in page  # 90 minutes (issue 16.10)
    unknown = client.post("/sla/policies", data=dict(base, organisation_code="NOPE"))
    assert unknown.status_code == 400 and 'id="organisation_code-error"' in unknown.get_data(as_text=True)
    bad = client.post("/sla/policies", data=dict(base, organisation_code="W-0001", next_update_mins="0"))
    assert bad.status_code == 400 and 'id="next_update_hours-error"' in bad.get_data(as_text=True)
    assert org.id


def test_a_priority_without_the_target_stops_tracking_it(db, make_org, make_ticket, agent):
    org = make_org(kind="clinic")
    sla.save_policy(db.session, SYSTEM, priority="P3", organisation_id=org.id, first_response_minutes=240,
                    resolution_minutes=5400, next_update_minutes=60)
    t = make_ticket(org=org)
    _reply(db, t, agent, None)
    clock = db.session.get(SlaClock, t.id)
    assert clock.next_update_due_at is not None
    tickets.update_fields(db.session, t.id, Actor(agent.id, agent.email), priority="P2")  # no org policy for P2
    db.session.refresh(clock)
    assert clock.next_update_minutes is None and clock.next_update_due_at is None
