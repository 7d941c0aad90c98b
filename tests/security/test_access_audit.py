"""Audit of reads (issue 13, point 5): refused access, views of personal data, exports.

Each row names the actor, their IP, the object and the result, and never a secret from the URL.
"""
from __future__ import annotations

import json

from sqlalchemy import select

from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor


def _rows(db, action: str, actor_id: int | None = None) -> list[AuditLog]:
    stmt = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
    if actor_id is not None:
        stmt = stmt.where(AuditLog.actor_id == actor_id)
    return list(db.session.scalars(stmt))


def test_someone_elses_ticket_is_recorded_as_denied(db, client, login, make_org, make_user, make_ticket):
    ticket = make_ticket(org=make_org(kind="clinic"))
    other = make_user(org=make_org(kind="clinic"))
    login(other)
    assert client.get(f"/portal/tickets/{ticket.ref}", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 404
    rows = _rows(db, "access.denied", other.id)
    assert len(rows) == 1
    row = rows[0]
    assert (row.actor_label, row.ip, row.object_type, row.object_id) == (other.email, "192.0.2.7", "ticket",
                                                                         str(ticket.id))
    assert row.detail["status"] == 404 and row.detail["result"] == "denied"
    assert row.detail["endpoint"] == "tickets.portal_detail"
    # The agent address sends a requester to the portal's, which refuses too.
    response = client.get(f"/tickets/{ticket.ref}", follow_redirects=True)
    assert response.status_code == 404
    assert len(_rows(db, "access.denied", other.id)) == 2
    # Not recorded for the ticket's own requester, who may see it.
    client.post("/logout")
    login(ticket.requester)
    assert client.get(f"/portal/tickets/{ticket.ref}").status_code == 200
    assert _rows(db, "access.denied", ticket.requester_id) == []


def test_views_of_personal_data(db, client, login, make_user, make_ticket, agent):
    ticket = make_ticket()
    login(agent)
    assert client.get(f"/tickets/{ticket.ref}").status_code == 200
    viewed = _rows(db, "ticket.viewed", agent.id)
    assert [(r.object_type, r.object_id, r.detail["result"]) for r in viewed] == [("ticket", str(ticket.id), "ok")]
    assert viewed[0].ip
    assert client.get(f"/accounts/users/{ticket.requester_id}").status_code == 200
    users = _rows(db, "user.viewed", agent.id)
    assert [(r.object_type, r.object_id) for r in users] == [("user", str(ticket.requester_id))]
    # The requester's own view of their ticket in the portal is recorded as well.
    client.post("/logout")
    login(ticket.requester)
    client.get(f"/portal/tickets/{ticket.ref}")
    assert len(_rows(db, "ticket.viewed", ticket.requester_id)) == 1


def test_exports(db, client, login, make_user, make_ticket):
    from helpdesk.insights import service as insights

    po = make_user(roles="product_owner")
    ticket = make_ticket()
    problem = insights.create_problem(db.session, Actor.for_user(po), title="在庫一覧のE500", ticket_ids=[ticket.id])
    login(po)
    assert client.get(f"/insights/problems/{problem.id}/export/weeks.csv").status_code == 200
    assert client.get(f"/insights/problems/{problem.id}/evidence.json").status_code == 200
    assert client.get(f"/insights/problems/{problem.id}/evidence.md").status_code == 200
    assert client.get("/reports/monthly.csv?month=2026-10").status_code == 200
    assert client.get("/reports/monthly?month=2026-09&format=csv").status_code == 200
    assert client.get("/reports/monthly?month=2026-09").status_code == 200  # the page is not an export
    rows = _rows(db, "export.downloaded", po.id)
    got = [(r.object_type, r.object_id, r.detail["endpoint"]) for r in rows]
    assert got == [("problem", str(problem.id), "insights.problem_export"),
                   ("problem", str(problem.id), "insights.evidence"),
                   ("problem", str(problem.id), "insights.evidence"),
                   ("report", "2026-10", "reports.monthly_csv"),
                   ("report", "2026-09", "reports.monthly")]
    assert all(r.ip and r.actor_label == po.email and r.detail["status"] == 200 for r in rows)


def test_no_secrets_in_the_trail(db, client, login, make_user):
    user = make_user()
    login(user)
    secret = "s3cr3t-reset-token-value-that-must-not-be-stored"
    client.get(f"/password/reset/{secret}")
    client.get(f"/portal/tickets/{secret}")
    for row in db.session.scalars(select(AuditLog).where(AuditLog.actor_id == user.id)):
        assert secret not in json.dumps(row.detail or {}, ensure_ascii=False)
        assert secret not in (row.object_id or "") and secret not in (row.summary or "")


def test_anonymous_requests_are_not_recorded(db, client, make_ticket):
    ticket = make_ticket()
    before = db.session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))
    client.get(f"/tickets/{ticket.ref}")
    client.get("/attachments/123")
    after = db.session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))
    assert before == after
