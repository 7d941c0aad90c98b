"""Concurrent API writes on one ticket (issue 13.12), real PostgreSQL, real commits, racing threads.

- Two PATCHes sent with the same `version`: one wins (200), the other gets 409 with the problem
  document — never 500, never both.
- Two public replies at once: both are kept (201, 201) and both are searchable.
- A reply racing a status change: both are kept (201 and 200).
"""
import threading
import uuid

import pytest
from sqlalchemy import select

from helpdesk.audit import Actor
from tests.conftest import PASSWORD
from tests.pg_fixtures import cleanup_org, needs_postgres

pytestmark = needs_postgres

PAIRS = 8


@pytest.fixture
def desk(real_app):
    """An organisation, a requester, an agent with an API token, and one open ticket (all committed)."""
    from helpdesk.accounts.models import Organisation, User
    from helpdesk.accounts.passwords import hash_password
    from helpdesk.api import service as api_service
    from helpdesk.extensions import db
    from helpdesk.tickets import service

    tag = uuid.uuid4().hex[:10]
    with real_app.app_context():
        org = Organisation(code=f"AC{tag}", name="同時更新テスト診療所", kind="clinic", prefecture="東京都")
        db.session.add(org)
        db.session.flush()
        hashed = hash_password(PASSWORD)
        requester = User(email=f"req-{tag}@example.jp", name="依頼 太郎", organisation_id=org.id, roles="requester",
                         password_hash=hashed, must_change_password=False)
        agent = User(email=f"agent-{tag}@example.jp", name="担当 花子", organisation_id=org.id, roles="agent",
                     password_hash=hashed, must_change_password=False)
        db.session.add_all([requester, agent])
        db.session.commit()
        ticket = service.create_ticket(db.session, actor=Actor.for_user(requester), subject="同時更新の確認",
                                       body="在庫画面が開きません", requester_id=requester.id)
        service.change_status(db.session, ticket.id, "open", Actor.for_user(agent))
        token = api_service.create_token(db.session, name=f"concurrency-{tag}", user_email=agent.email,
                                         scopes=["read", "tickets:write"], actor=Actor.system("test")).plaintext
        org_id, ref, ticket_id = org.id, ticket.ref, ticket.id
    try:
        yield {"ref": ref, "ticket_id": ticket_id, "token": token}
    finally:
        cleanup_org(real_app, org_id)


def _race(real_app, token, requests):
    """Send the requests at the same moment, one thread and client each; returns [(status, json)]."""
    clients = [real_app.test_client() for _ in requests]
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def send(i):
        method, path, body = requests[i]
        barrier.wait()
        response = clients[i].open("/api/v1" + path, method=method, json=body,
                                   headers={"Authorization": f"Bearer {token}"})
        results[i] = (response.status_code, response.get_json(silent=True), response.content_type)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _ticket(real_app, ticket_id):
    from helpdesk.extensions import db
    from helpdesk.tickets.models import Ticket

    with real_app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        db.session.expunge(ticket)
        return ticket


def test_two_patches_with_one_version_one_wins_the_other_gets_409(real_app, desk):
    ref = desk["ref"]
    for n in range(PAIRS):
        ticket = _ticket(real_app, desk["ticket_id"])
        first, second = [p for p in ("P1", "P2", "P3", "P4") if p != ticket.priority][n % 2:n % 2 + 2]
        results = _race(real_app, desk["token"], [
            ("PATCH", f"/tickets/{ref}", {"priority": first, "version": ticket.version}),
            ("PATCH", f"/tickets/{ref}", {"priority": second, "version": ticket.version})])
        assert sorted(status for status, _, _ in results) == [200, 409], results
        loser = next(r for r in results if r[0] == 409)
        assert loser[2] == "application/problem+json"
        assert loser[1]["status"] == 409 and loser[1]["type"].endswith("/version-conflict")
        winner = next(r for r in results if r[0] == 200)
        assert _ticket(real_app, desk["ticket_id"]).priority == winner[1]["priority"]


def test_two_concurrent_public_replies_are_both_kept(real_app, desk):
    from helpdesk.extensions import db
    from helpdesk.tickets.models import Comment

    ref = desk["ref"]
    for n in range(PAIRS):
        results = _race(real_app, desk["token"], [
            ("POST", f"/tickets/{ref}/replies", {"body": f"返信A{n} 手順をご案内します", "public": True}),
            ("POST", f"/tickets/{ref}/replies", {"body": f"返信B{n} 追加の確認です", "public": True})])
        assert [status for status, _, _ in results] == [201, 201], results
    with real_app.app_context():
        bodies = db.session.scalars(select(Comment.body).where(Comment.ticket_id == desk["ticket_id"])).all()
    assert len(bodies) == 2 * PAIRS
    search_text = _ticket(real_app, desk["ticket_id"]).search_text
    for n in range(PAIRS):
        assert f"返信a{n}" in search_text and f"返信b{n}" in search_text  # nobody's text overwritten


def test_reply_racing_a_status_change_keeps_both(real_app, desk):
    from helpdesk.extensions import db
    from helpdesk.tickets.models import Comment

    ref = desk["ref"]
    for n in range(PAIRS):
        ticket = _ticket(real_app, desk["ticket_id"])
        target = "pending" if ticket.status == "open" else "open"
        results = _race(real_app, desk["token"], [
            ("POST", f"/tickets/{ref}/replies", {"body": f"状況確認{n}", "public": True}),
            ("PATCH", f"/tickets/{ref}", {"status": target, "version": ticket.version})])
        assert [status for status, _, _ in results] == [201, 200], results
        assert _ticket(real_app, desk["ticket_id"]).status == target
        with real_app.app_context():
            assert db.session.scalar(select(Comment.id).where(Comment.ticket_id == desk["ticket_id"],
                                                              Comment.body == f"状況確認{n}")) is not None
