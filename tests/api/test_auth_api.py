"""Bearer tokens: missing / unknown / expired / revoked / wrong scope; last-used throttling; rate limit; CLI."""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pytest

from sqlalchemy import select

from helpdesk.accounts.models import AuditLog
from helpdesk.api import service
from helpdesk.api.models import ApiToken
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from tests.api.conftest import Api, problem_of


def test_missing_and_unknown_tokens_are_401(client, agent):
    body = problem_of(Api(client, None).get("/tickets"), 401)
    assert "Authorization" in body["detail"]
    r = Api(client, "hd_not-a-real-token").get("/tickets")
    problem_of(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # Cookies never authenticate the API.
    problem_of(client.get("/api/v1/tickets"), 401)


def test_expired_revoked_and_disabled(db, client, make_user, make_token):
    user = make_user(roles="agent")
    expired = make_token(user, expires_at=utcnow() - dt.timedelta(seconds=1))
    assert "有効期限" in problem_of(Api(client, expired).get("/tickets"), 401)["detail"]
    revoked = make_token(user)
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == service.hash_token(revoked)))
    assert Api(client, revoked).get("/tickets").status_code == 200
    service.revoke_token(db.session, token.id, Actor.system("test"))
    assert "失効" in problem_of(Api(client, revoked).get("/tickets"), 401)["detail"]
    other = make_token(user)
    user.state = "disabled"
    db.session.commit()
    problem_of(Api(client, other).get("/tickets"), 401)


def test_wrong_scope_is_403_and_writes_nothing(db, client, make_user, make_token):
    user = make_user(roles="agent")
    reader = Api(client, make_token(user, scopes=("read",)))
    body = problem_of(reader.post("/tickets", {"subject": "書けないはず"}), 403)
    assert "tickets:write" in body["detail"]
    assert reader.get("/tickets").status_code == 200
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "api.ticket_create")) is None


def test_token_stored_hashed_and_last_used_throttled(db, client, make_user, make_token):
    user = make_user(roles="agent")
    plaintext = make_token(user)
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == service.hash_token(plaintext)))
    assert plaintext not in (token.token_hash, token.prefix) and plaintext.startswith(token.prefix)
    assert token.last_used_at is None
    # An error answer writes nothing, not even the last-used time.
    assert Api(client, plaintext).post("/tickets", {"bogus": 1}).status_code == 400
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at is None
    Api(client, plaintext).get("/tickets")
    db.session.expire_all()
    first = db.session.get(ApiToken, token.id).last_used_at
    assert first is not None
    Api(client, plaintext).get("/tickets")
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at == first  # within a minute: not rewritten
    # An hour later it is written again.
    t = db.session.get(ApiToken, token.id)
    t.last_used_at = first - dt.timedelta(hours=1)
    db.session.commit()
    Api(client, plaintext).get("/tickets")
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at > first - dt.timedelta(hours=1)


@contextmanager
def _limited_client(tmp_path, **config):
    """A test client of a second app with the rate limiters on (the shared test app runs without them).
    Flask-Limiter (login forms) is one shared object: its switch is left as found."""
    from helpdesk import create_app
    from helpdesk.extensions import db as _db
    from helpdesk.extensions import limiter
    from tests.conftest import base_config

    saved = limiter.enabled
    limited = create_app(base_config(RATELIMIT_ENABLED=True, UPLOAD_FOLDER=str(tmp_path), **config))
    try:
        with limited.app_context():
            if _db.engine.dialect.name == "sqlite":
                _db.create_all()
        yield limited.test_client()
    finally:
        limiter.enabled = saved


def test_rate_limit_per_token(tmp_path):
    """Unknown tokens only read: each is counted in its own bucket."""
    with _limited_client(tmp_path, API_RATE_LIMIT="3 per minute") as client:
        codes = [Api(client, "hd_unknown-one").get("/tickets").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        body = problem_of(Api(client, "hd_unknown-one").get("/tickets"), 429)
        assert body["detail"]
        # Another token has its own bucket.
        assert Api(client, "hd_unknown-two").get("/tickets").status_code == 401


def test_cli_creates_token_shown_once(app, db, make_user):
    user = make_user(roles="agent")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api", "token", "create", "--name", "CTI連携", "--user", user.email,
                                 "--scope", "read", "--scope", "tickets:write"])
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip().splitlines()[0]
    token = db.session.scalar(select(ApiToken).where(ApiToken.name == "CTI連携"))
    assert token.token_hash == service.hash_token(plaintext) and token.scope_set == {"read", "tickets:write"}
    bad = runner.invoke(args=["api", "token", "create", "--name", "x", "--user", "ghost@example.jp", "--scope", "nope"])
    assert bad.exit_code == 2 and "scopes" in bad.output and "user" in bad.output


def test_rate_limit_headers_and_retry_after(tmp_path):
    """The API counter itself: Redis when the run has one (shared by workers), else this process."""
    import uuid

    from helpdesk.api.ratelimit import parse_limit
    from tests.conftest import TEST_REDIS

    with _limited_client(tmp_path, API_RATE_LIMIT="2 per hour",
                         RATELIMIT_STORAGE_URI=TEST_REDIS or "memory://") as client:
        api = Api(client, f"hd_unknown-{uuid.uuid4().hex}")
        first, second, third = (api.get("/tickets") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [401, 401, 429]
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert [first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]] == ["1", "0"]
    assert int(first.headers["X-RateLimit-Reset"]) % 3600 == 0
    assert 1 <= int(third.headers["Retry-After"]) <= 3600
    assert "3600秒あたり2回" in problem_of(third, 429)["detail"]
    assert parse_limit("600 per minute") == (600, 60) and parse_limit("10/second") == (10, 1)
    with pytest.raises(ValueError):
        parse_limit("many per fortnight")
