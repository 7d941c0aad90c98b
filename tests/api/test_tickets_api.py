"""Contract tests of /api/v1/tickets: create, get, list, update with locking, replies; errors write nothing."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from helpdesk.accounts.models import AuditLog
from helpdesk.api.models import IdempotencyRecord
from helpdesk.tickets.models import Comment, Ticket
from tests.api.conftest import problem_of

ISO_TOKYO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+09:00$")


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_requester_creates_and_reads_own_ticket(db, make_org, make_user, api_for):
    org = make_org(kind="clinic")
    user = make_user(org=org)
    api = api_for(user)
    r = api.post("/tickets", {"subject": "ログインできません", "body": "初期パスワードで入れません", "category": "login"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert re.fullmatch(r"HD-\d{6}", body["ref"])
    assert body["channel"] == "api" and body["status"] == "new" and body["category"] == "login"
    assert body["requester"]["email"] == user.email and body["organisation"]["code"] == org.code
    assert ISO_TOKYO.match(body["created_at"]), body["created_at"]
    assert r.headers["Location"] == f"/api/v1/tickets/{body['ref']}"
    assert r.headers["ETag"] == f'"{body["version"]}"'
    got = api.get(f"/tickets/{body['ref']}")
    assert got.status_code == 200 and got.get_json()["subject"] == "ログインできません"
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "api.ticket_create"))
    assert audit.actor_label.startswith("api:") and audit.object_id == body["ref"]


def test_token_of_org_a_cannot_read_org_b(make_org, make_user, make_ticket, api_for):
    a, b = make_org(), make_org()
    ticket_b = make_ticket(org=b, requester=make_user(org=b))
    api_a = api_for(make_user(org=a))
    problem_of(api_a.get(f"/tickets/{ticket_b.ref}"), 404)
    listed = api_a.get("/tickets").get_json()["items"]
    assert ticket_b.ref not in [t["ref"] for t in listed]
    problem_of(api_a.post(f"/tickets/{ticket_b.ref}/replies", {"body": "見えますか"}), 404)


def test_municipality_sees_its_clinics_tickets(make_org, make_user, make_ticket, api_for):
    city = make_org(kind="municipality")
    clinic = make_org(kind="clinic", parent=city)
    t = make_ticket(org=clinic, requester=make_user(org=clinic))
    api = api_for(make_user(org=city), scopes=("read",))
    assert api.get(f"/tickets/{t.ref}").status_code == 200


def test_list_filters_and_keyset_pagination(make_org, make_user, make_ticket, agent, api_for):
    org = make_org()
    requester = make_user(org=org)
    made = [make_ticket(org=org, requester=requester, subject=f"件名{i}", priority="P1" if i % 2 else "P3")
            for i in range(5)]
    api = api_for(agent, scopes=("read",))
    first = api.get(f"/tickets?organisation={org.code}&limit=2").get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [t["ref"] for t in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/tickets", query_string={"organisation": org.code, "limit": 2, "cursor": cursor}).get_json()
        seen += [t["ref"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(t.ref for t in made) and len(set(seen)) == 5
    p1 = api.get(f"/tickets?organisation={org.code}&priority=P1").get_json()["items"]
    assert {t["priority"] for t in p1} == {"P1"} and len(p1) == 2


def test_list_rejects_bad_filters(agent, api_for):
    api = api_for(agent, scopes=("read",))
    body = problem_of(api.get("/tickets?status=bogus&limit=500"), 400)
    assert "limit" in body["errors"]
    body = problem_of(api.get("/tickets?status=bogus"), 400)
    assert "status" in body["errors"]
    problem_of(api.get("/tickets?cursor=not-a-cursor"), 400)


def test_patch_with_version_and_if_match(db, make_ticket, agent, api_for):
    t = make_ticket()
    api = api_for(agent)
    current = api.get(f"/tickets/{t.ref}").get_json()
    r = api.patch(f"/tickets/{t.ref}", {"priority": "P1", "assignee": agent.email, "version": current["version"]})
    assert r.status_code == 200, r.get_json()
    updated = r.get_json()
    assert updated["priority"] == "P1" and updated["assignee"]["email"] == agent.email
    assert updated["status"] == "open" and updated["version"] > current["version"]
    # A stale body version: 409, nothing changed.
    body = problem_of(api.patch(f"/tickets/{t.ref}", {"priority": "P4", "version": current["version"]}), 409)
    assert "バージョン" in body["detail"]
    # A stale If-Match: 412.
    problem_of(api.patch(f"/tickets/{t.ref}", {"priority": "P4"}, headers={"If-Match": f'"{current["version"]}"'}), 412)
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).priority == "P1"
    ok = api.patch(f"/tickets/{t.ref}", {"status": "resolved"}, headers={"If-Match": f'"{updated["version"]}"'})
    assert ok.status_code == 200 and ok.get_json()["status"] == "resolved"
    assert ok.headers["ETag"] == f'"{ok.get_json()["version"]}"'


def test_patch_refuses_invalid_transition_and_requesters(make_org, make_user, make_ticket, agent, api_for):
    org = make_org()
    requester = make_user(org=org)
    t = make_ticket(org=org, requester=requester)
    problem_of(api_for(requester).patch(f"/tickets/{t.ref}", {"priority": "P1"}), 403)
    api = api_for(agent)
    assert api.patch(f"/tickets/{t.ref}", {"status": "closed"}).status_code == 200
    problem_of(api.patch(f"/tickets/{t.ref}", {"status": "open"}), 409)
    body = problem_of(api.patch(f"/tickets/{t.ref}", {}), 400)
    assert "body" in body["errors"]
    body = problem_of(api.patch(f"/tickets/{t.ref}", {"assignee": "nobody@example.jp"}), 422)
    assert "assignee" in body["errors"]


def test_reply_and_internal_note(db, make_org, make_user, make_ticket, agent, api_for):
    org = make_org()
    requester = make_user(org=org)
    t = make_ticket(org=org, requester=requester)
    r = api_for(agent).post(f"/tickets/{t.ref}/replies", {"body": "手順をご案内します。"})
    assert r.status_code == 201 and r.get_json()["public"] is True and r.get_json()["via"] == "api"
    note = api_for(agent).post(f"/tickets/{t.ref}/replies", {"body": "内部メモ", "public": False})
    assert note.status_code == 201 and note.get_json()["public"] is False
    body = problem_of(api_for(requester).post(f"/tickets/{t.ref}/replies", {"body": "メモ", "public": False}), 403)
    assert "public" in body["errors"]
    assert api_for(requester).post(f"/tickets/{t.ref}/replies", {"body": "ありがとうございます"}).status_code == 201
    assert _count(db, Comment) == 3


def test_staff_creates_on_behalf_and_requester_may_not(make_org, make_user, agent, api_for):
    org = make_org(kind="wholesaler")
    requester = make_user(org=org)
    r = api_for(agent).post("/tickets", {"subject": "配送先変更", "requester_email": requester.email,
                                         "channel": "phone"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["organisation"]["code"] == org.code and r.get_json()["channel"] == "phone"
    body = problem_of(api_for(requester).post("/tickets", {"subject": "x", "organisation_code": org.code}), 403)
    assert "organisation_code" in body["errors"]
    body = problem_of(api_for(agent).post("/tickets", {"subject": "x", "requester_email": "ghost@example.jp"}), 422)
    assert "requester_email" in body["errors"]


def test_bad_bodies_are_problems_and_write_nothing(db, app, agent, api_for):
    api = api_for(agent)
    tickets_before, audit_before = _count(db, Ticket), _count(db, AuditLog)
    body = problem_of(api.post("/tickets", raw='{"subject": "壊れた', ), 400)
    assert body["type"].endswith("invalid-json")
    body = problem_of(api.post("/tickets", {"subject": 123, "priority": "P9"}), 400)
    assert set(body["errors"]) >= {"subject", "priority"}
    body = problem_of(api.post("/tickets", {"subject": "件名", "colour": "red"}), 400)
    assert "colour" in body["errors"] and "受け付けていません" in body["errors"]["colour"][0]
    problem_of(api.post("/tickets", {}), 400)
    problem_of(api.post("/tickets", ["not", "an", "object"]), 400)
    problem_of(api.post("/tickets", raw="subject=x", content_type="application/x-www-form-urlencoded"), 415)
    body = problem_of(api.post("/tickets", raw='{"subject": "NUL\\u0000入り", "tags": ["a\\ud800"]}'), 400)
    assert "制御文字" in body["errors"]["subject"][0] and "サロゲート" in body["errors"]["tags.0"][0]
    problem_of(api.post("/tickets", raw="[" * 5000 + "]" * 5000), 400)
    problem_of(api.post("/tickets", raw='{"subject": "x", "tags": ' + "[" * 30 + "]" * 30 + "}"), 400)
    big = {"subject": "大きい", "body": "あ" * (app.config.get("API_MAX_BODY_BYTES", 65536))}
    problem_of(api.post("/tickets", big), 413)
    assert _count(db, Ticket) == tickets_before and _count(db, AuditLog) == audit_before


def test_idempotent_retry_returns_same_ticket(db, make_org, make_user, api_for):
    user = make_user(org=make_org())
    api = api_for(user)
    headers = {"Idempotency-Key": "order-42"}
    first = api.post("/tickets", {"subject": "再送テスト"}, headers=headers)
    again = api.post("/tickets", {"subject": "再送テスト"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["ref"] == again.get_json()["ref"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert db.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.subject == "再送テスト")) == 1
    body = problem_of(api.post("/tickets", {"subject": "別の内容"}, headers=headers), 422)
    assert body["type"].endswith("idempotency-mismatch")
    assert _count(db, IdempotencyRecord) == 1
    problem_of(api.post("/tickets", {"subject": "x"}, headers={"Idempotency-Key": "bad key with spaces"}), 400)
