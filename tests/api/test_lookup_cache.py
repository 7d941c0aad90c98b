"""The per-process lookup cache (helpdesk/lookup_cache.py): categories, SLA policies, webhook
subscriptions and API tokens are read once, a change made in this process applies at once, one made
elsewhere (simulated with raw SQL, which the ORM events do not see) applies once the TTL has passed,
and a rolled-back change never sticks.

Other tests run with the cache off (conftest: each test's rows are rolled back underneath).
"""
from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import event, select, text

from helpdesk import lookup_cache
from helpdesk.api import service as api_service
from helpdesk.audit import Actor
from helpdesk.notify.models import Outbox
from helpdesk.sla import service as sla
from helpdesk.tickets import service as tickets

from .conftest import Api


@pytest.fixture
def cache_on(app, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(lookup_cache, "_clock", lambda: now[0])
    lookup_cache.invalidate_all()
    app.config["LOOKUP_CACHE_SECONDS"] = 30
    yield now
    app.config["LOOKUP_CACHE_SECONDS"] = 0
    lookup_cache.invalidate_all()


@contextlib.contextmanager
def selects_of(db, table: str):
    seen: list[str] = []

    def listener(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement.replace("\n", " "):
            seen.append(statement)

    engine = db.session.get_bind().engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def _new_request(db):
    """What a new HTTP request sees: a fresh session (the identity map is empty)."""
    db.session.remove()


def test_category_read_once_then_from_cache(db, cache_on):
    with selects_of(db, "categories") as seen:
        first = tickets.category_by_code(db.session, "login")
        first_id, first_name = first.id, first.name_ja
        _new_request(db)
        again = tickets.category_by_code(db.session, "login")
        assert (again.id, again.name_ja) == (first_id, first_name)
        assert [c for c, _ in tickets.category_choices(db.session)][:1] == ["login"]
    assert len(seen) == 1
    with pytest.raises(tickets.TicketError):
        tickets.category_by_code(db.session, "no-such-category")


def test_change_in_this_process_applies_at_once(db, cache_on):
    tickets.category_by_code(db.session, "login")
    _new_request(db)
    category = tickets.category_by_code(db.session, "login")
    category.name_ja = "ログイン（改訂）"
    db.session.commit()
    _new_request(db)
    assert tickets.category_by_code(db.session, "login").name_ja == "ログイン（改訂）"


def test_change_elsewhere_applies_after_the_ttl(db, cache_on):
    tickets.category_by_code(db.session, "login")
    # Another process renames it: raw SQL is invisible to this process's ORM events.
    db.session.execute(text("UPDATE categories SET name_ja = 'ほかのプロセス' WHERE code = 'login'"))
    db.session.commit()
    _new_request(db)
    assert tickets.category_by_code(db.session, "login").name_ja != "ほかのプロセス"
    cache_on[0] += 31
    _new_request(db)
    assert tickets.category_by_code(db.session, "login").name_ja == "ほかのプロセス"


def test_rolled_back_change_never_sticks(db, cache_on):
    category = tickets.category_by_code(db.session, "login")
    original = category.name_ja
    category.name_ja = "取り消される名前"
    db.session.flush()
    # Inside the changing transaction the cache is bypassed: it reads its own write.
    assert tickets.category_by_code(db.session, "login").name_ja == "取り消される名前"
    db.session.rollback()
    _new_request(db)
    assert tickets.category_by_code(db.session, "login").name_ja == original


def test_new_sla_policy_applies_to_the_next_ticket(db, cache_on, make_ticket):
    before = make_ticket(priority="P1")
    due_before = before.resolution_due_at - before.created_at
    sla.save_policy(db.session, Actor.system("test"), priority="P1", first_response_minutes=10,
                    resolution_minutes=24 * 60 * 20)
    _new_request(db)
    after = make_ticket(priority="P1")
    assert after.resolution_due_at - after.created_at > due_before


def test_new_webhook_subscription_gets_the_next_ticket(db, cache_on, make_ticket):
    make_ticket()  # subscriptions looked up (none) and cached
    sub = api_service.create_subscription(db.session, name="crm", url="https://crm.example.com/hook",
                                          events=["ticket.created"], actor=Actor.system("t"),
                                          resolver=lambda host, port: ["93.184.216.34"])
    sub_id = sub.id
    _new_request(db)
    ticket = make_ticket()
    rows = db.session.scalars(select(Outbox).where(Outbox.object_ref == f"subscription:{sub_id}")).all()
    assert [r.payload["data"]["ref"] for r in rows] == [ticket.ref]


def test_token_revoked_or_user_disabled_here_is_refused_at_once(db, cache_on, client, make_user, make_token):
    user = make_user(roles="agent")
    plaintext = make_token(user)
    api = Api(client, plaintext)
    # The first use records last_used_at (a write to api_tokens: the cache reloads once after it).
    assert api.get("/tickets").status_code == 200
    assert api.get("/tickets").status_code == 200
    with selects_of(db, "api_tokens") as seen:
        assert api.get("/tickets").status_code == 200
    assert seen == []  # the second request authenticated from the cache
    token_id = db.session.scalar(select(text("id")).select_from(text("api_tokens"))
                                 .where(text("token_hash = :h")).params(h=api_service.hash_token(plaintext)))
    api_service.revoke_token(db.session, token_id, Actor.system("test"))
    assert api.get("/tickets").status_code == 401

    other = make_user(roles="agent")
    other_token = Api(client, make_token(other))
    assert other_token.get("/tickets").status_code == 200
    other = db.session.merge(other)
    other.state = "disabled"
    db.session.commit()
    assert other_token.get("/tickets").status_code == 401


def test_token_revoked_elsewhere_is_refused_after_the_ttl(db, cache_on, client, make_user, make_token):
    plaintext = make_token(make_user(roles="agent"))
    api = Api(client, plaintext)
    assert api.get("/tickets").status_code == 200  # first use: last_used_at written, entry reloaded next
    assert api.get("/tickets").status_code == 200
    db.session.execute(text("UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE token_hash = :h"),
                       {"h": api_service.hash_token(plaintext)})
    db.session.commit()
    _new_request(db)  # (the test client shares the test's app context, hence its session)
    assert api.get("/tickets").status_code == 200  # another worker has not noticed yet …
    cache_on[0] += 31
    _new_request(db)
    assert api.get("/tickets").status_code == 401  # … and does once the entry is older than the TTL
