"""The monthly client report: figures per role, page, CSV and CLI."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from helpdesk.audit import Actor
from helpdesk.reports import service
from helpdesk.sla.calendar import TOKYO
from helpdesk.tickets import service as tickets


def jst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


@pytest.fixture
def october(db, make_ticket, make_org, agent):
    staff = Actor(agent.id, agent.email)
    clinic, city = make_org(kind="clinic"), make_org(kind="municipality")
    made = {}
    # A phone call resolved on the call (FCR), answered at once, 5 minutes handle time.
    made["call"] = make_ticket(org=clinic, channel="phone", created_at=jst(2026, 10, 5, 10), category="login",
                               actor=staff, call_started_at=jst(2026, 10, 5, 10),
                               call_ended_at=jst(2026, 10, 5, 10, 5), resolved_on_call=True)
    # A web ticket answered after 30 business minutes, resolved in time, rated 4.
    web = make_ticket(org=clinic, channel="web", created_at=jst(2026, 10, 5, 9), category="login")
    web.first_response_at = jst(2026, 10, 5, 9, 30)
    web.status, web.resolved_at, web.csat_score = "resolved", jst(2026, 10, 5, 15), 4
    # A municipality mail answered late (next day) and still open at month end.
    late = make_ticket(org=city, channel="email", created_at=jst(2026, 10, 30, 17), category="allocation")
    late.first_response_at = jst(2026, 11, 2, 13)
    # Outside the month: not counted as received, but in the backlog if open.
    make_ticket(org=city, channel="web", created_at=jst(2026, 9, 28, 10))
    db.session.commit()
    return made


def test_figures_per_role(db, october):
    report = service.monthly_report(db.session, "2026-10")
    clinic, city, total = report.roles["clinic"], report.roles["municipality"], report.total
    assert clinic.received == 2 and clinic.by_channel["phone"] == 1 and clinic.by_channel["web"] == 1
    assert city.received == 1 and city.by_channel["email"] == 1
    assert total.received == 3
    assert clinic.first_response_pct == 100.0
    assert city.first_response_pct == 0.0  # 240-min target: due Mon 12:00, answered 13:00
    assert clinic.calls == 1 and clinic.avg_handle_seconds == 300 and clinic.fcr_pct == 100.0
    assert clinic.csat_avg == 4.0 and clinic.csat_count == 1
    assert clinic.avg_first_response_min == 15.0 and clinic.p90_first_response_min == 30.0
    assert city.backlog_end == 2  # the late October ticket and the September one
    assert clinic.backlog_end == 0
    assert clinic.top_categories == [("login", 2)]
    assert total.top_categories[0] == ("login", 2)


def test_month_parsing():
    assert service.parse_month("2026-10") == "2026-10"
    assert service.parse_month("", today=dt.date(2026, 1, 15)) == "2025-12"
    with pytest.raises(service.ReportError):
        service.parse_month("10/2026")
    with pytest.raises(service.ReportError):
        service.parse_month("2026-13")


def test_page_csv_and_access(db, client, login, make_user, october):
    supervisor = make_user(roles="supervisor")
    login(supervisor)
    page = client.get("/reports/monthly?month=2026-10")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and "<script" not in html.split("<main", 1)[1].split("</main>", 1)[0]
    assert "医療機関" in html and "reports.css" in html
    assert client.get("/reports/monthly?month=2026-99").status_code == 400
    response = client.get("/reports/monthly.csv?month=2026-10")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    by_role = {r["利用者種別"]: r for r in rows}  # issue 16.6: headers and roles in words (Japanese by default)
    assert by_role["医療機関"]["受付件数"] == "2" and by_role["全体"]["受付件数"] == "3"
    assert by_role["医療機関"]["一次解決率（%）"] == "100.0"
    assert list(rows[0])[:4] == ["対象月", "利用者種別", "受付件数", "受付件数（電話）"]
    assert "初回応答 平均（営業時間・分）" in rows[0] and not any("_" in h for h in rows[0])
    client.post("/logout")
    login(make_user(roles="agent"))
    assert client.get("/reports/monthly?month=2026-10").status_code == 403


def test_csv_headers_in_english_for_an_english_user(db, client, login, make_user, october):
    from flask_babel import refresh

    login(make_user(roles="supervisor", locale="en"))  # the user's own language (no /lang switch)
    refresh()  # the test holds one app context for all requests: forget the locale flask-babel cached in it
    response = client.get("/reports/monthly.csv?month=2026-10")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert list(rows[0])[:4] == ["Month", "User type", "Received", "Received (Phone)"]
    by_role = {r["User type"]: r for r in rows}
    assert by_role["Clinic"]["Received"] == "2" and by_role["All"]["Received"] == "3"
    assert "First response, mean (business hours, minutes)" in rows[0]
    assert not any(ch in "".join(rows[0]) for ch in "受付利用者")


def test_monthly_page_hint_says_hours_and_minutes(client, login, make_user):
    login(make_user(roles="supervisor"))
    html = client.get("/reports/monthly?month=2026-10").get_data(as_text=True)
    assert "の分です" not in html and "時間と分で表しています" in html


def test_cli_json_and_csv(app, db, october):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["report", "monthly", "--month", "2026-10", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {r["role"]: r["received"] for r in data["roles"]}["all"] == 3
    result = runner.invoke(args=["report", "monthly", "--month", "2026-10", "--csv"])
    assert result.exit_code == 0 and result.output.startswith("month,role,received")
    bad = runner.invoke(args=["report", "monthly", "--month", "oct"])
    assert bad.exit_code != 0


def test_monthly_page_durations_in_hours_and_minutes_and_print_button(client, login, make_user):
    """Issue 16.6: no raw business minutes on the page; a print button (plain JS in app.js)."""
    import re

    login(make_user(roles="supervisor"))
    html = client.get("/reports/monthly").get_data(as_text=True)
    assert "営業分" not in html and "data-print" in html
    assert not re.search(r"<td>\d+\.\d+</td>", html)
