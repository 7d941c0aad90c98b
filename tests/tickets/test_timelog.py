"""Time tracking: minutes logged per reply/note (form and API), per-ticket total, monthly report totals."""
from __future__ import annotations

import datetime as dt

import flask_babel
from sqlalchemy import func, select, update

from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.common import TOKYO
from helpdesk.reports import service as reports
from helpdesk.tickets import service as tickets
from helpdesk.tickets import timelog
from helpdesk.tickets.models import Comment


class Api:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def post(self, path, body):
        return self.client.post("/api/v1" + path, json=body, headers={"Authorization": f"Bearer {self.token}"})


def _post_reply(client, ticket, minutes, body="確認しました", visibility="public"):
    return client.post(f"/tickets/{ticket.ref}/reply", data={
        "body": body, "visibility": visibility, "version": ticket.version, "seen_event": 0, "minutes": minutes})


def test_reply_form_logs_minutes_and_the_ticket_shows_the_total(db, client, login, agent, make_ticket):
    ticket = make_ticket()
    login(agent)
    assert 'name="minutes"' in client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert _post_reply(client, ticket, "15").status_code == 302
    db.session.refresh(ticket)
    assert _post_reply(client, ticket, "２０", visibility="internal", body="調査メモ").status_code == 302
    db.session.refresh(ticket)
    assert _post_reply(client, ticket, "", body="記録なし").status_code == 302
    assert sorted(m for m in db.session.scalars(select(Comment.minutes).where(Comment.ticket_id == ticket.id))
                  if m) == [15, 20]
    assert timelog.ticket_minutes(db.session, ticket.id) == 35
    page = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert "作業時間 合計 35分" in page and "作業 20分" in page
    assert db.session.scalar(select(func.count()).select_from(AuditLog)
                             .where(AuditLog.action == "ticket.time_logged")) == 2


def test_reply_form_refuses_bad_minutes_with_one_plain_message(db, client, login, agent, make_ticket):
    ticket = make_ticket()
    login(agent)
    for value in ("abc", "0", "1441", "1.5"):
        response = _post_reply(client, ticket, value)
        page = response.get_data(as_text=True)
        assert response.status_code == 400, value
        assert page.count('id="minutes-error"') == 1
        assert "作業時間は1〜1440の分数で入力してください。" in page and "Not a valid" not in page
    assert db.session.scalar(select(func.count()).select_from(Comment).where(Comment.ticket_id == ticket.id)) == 0
    client.post("/lang", data={"lang": "en"})
    flask_babel.refresh()
    page = _post_reply(client, ticket, "abc").get_data(as_text=True)
    assert "Enter the time spent as whole minutes from 1 to 1440." in page and "Time spent" in page


def test_requesters_cannot_log_minutes(db, make_ticket):
    ticket = make_ticket()
    requester = ticket.requester
    comment = tickets.add_comment(db.session, ticket.id, "追記します", Actor(requester.id, requester.email),
                                  commit=False)
    try:
        timelog.log_minutes(db.session, comment, 10, Actor(requester.id, requester.email))
    except timelog.TimeLogError as exc:
        assert "担当者だけ" in str(exc)
    else:
        raise AssertionError("a requester logged minutes")
    db.session.rollback()


def test_api_minutes(db, client, agent, make_ticket):
    from helpdesk.api import service as api_service

    def make_token(user):
        return api_service.create_token(db.session, name=f"t-{user.id}", user_email=user.email,
                                        scopes=["read", "tickets:write"], actor=Actor.system("test")).plaintext

    ticket = make_ticket()
    api = Api(client, make_token(agent))
    created = api.post(f"/tickets/{ticket.ref}/replies", {"body": "手順をご案内します", "minutes": 12})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["minutes"] == 12
    assert timelog.ticket_minutes(db.session, ticket.id) == 12
    assert api.post(f"/tickets/{ticket.ref}/replies", {"body": "x", "minutes": 0}).status_code == 400  # schema: 1..1440
    requester_api = Api(client, make_token(ticket.requester))
    refused = requester_api.post(f"/tickets/{ticket.ref}/replies", {"body": "追記", "minutes": 5})
    assert refused.status_code == 403
    assert timelog.ticket_minutes(db.session, ticket.id) == 12


def test_monthly_report_totals_per_agent_and_organisation(db, make_user, make_org, make_ticket, client, login):
    a1 = make_user(roles="agent", name="担当 一郎")
    a2 = make_user(roles="agent", name="担当 二郎")
    org1, org2 = make_org(name="北市役所"), make_org(name="南クリニック")
    t1, t2 = make_ticket(org=org1), make_ticket(org=org2)

    def log(ticket, agent, minutes, at):
        comment = tickets.add_comment(db.session, ticket.id, "対応", Actor(agent.id, agent.email), commit=False)
        timelog.log_minutes(db.session, comment, minutes, Actor(agent.id, agent.email))
        db.session.flush()
        db.session.execute(update(Comment).where(Comment.id == comment.id).values(created_at=at))
        db.session.commit()

    inside = dt.datetime(2026, 10, 15, 10, tzinfo=TOKYO)
    log(t1, a1, 30, inside)
    log(t1, a2, 10, inside)
    log(t2, a1, 45, dt.datetime(2026, 10, 1, 0, 0, tzinfo=TOKYO))        # first instant of October (JST)
    log(t2, a2, 99, dt.datetime(2026, 9, 30, 23, 59, tzinfo=TOKYO))      # September: not counted
    log(t1, a1, 77, dt.datetime(2026, 11, 1, 0, 0, tzinfo=TOKYO))        # November: not counted
    report = reports.monthly_report(db.session, "2026-10")
    assert report.time["total_minutes"] == 85
    assert [(a["name"], a["minutes"], a["tickets"]) for a in report.time["agents"]] == [
        ("担当 一郎", 75, 2), ("担当 二郎", 10, 1)]
    assert [(o["name"], o["minutes"], o["tickets"]) for o in report.time["organisations"]] == [
        ("南クリニック", 45, 1), ("北市役所", 40, 1)]
    assert reports.report_json(report)["time"]["total_minutes"] == 85
    login(make_user(roles="supervisor"))
    page = client.get("/reports/monthly?month=2026-10").get_data(as_text=True)
    assert "合計 1時間25分" in page and "担当 一郎" in page and "南クリニック" in page  # 85 minutes (issue 16.6)
