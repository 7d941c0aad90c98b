"""Parallel password guessing against one account checks at most LOGIN_MAX_FAILURES passwords.

Issue 13, point 2. A second app commits for real (no per-test rollback): on PostgreSQL it is the test
database, on SQLite a database file in the test's temporary folder (in-memory SQLite has no
concurrent connections). Each thread has its own test client, so its own scoped session and
database connection; a barrier releases them together.
"""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import delete, func, select, text

from tests.conftest import PASSWORD, TEST_DB, base_config

THREADS = 20
LIMIT = 5


@pytest.fixture
def real_app(tmp_path):
    from helpdesk import create_app
    from helpdesk.extensions import db

    url = TEST_DB if TEST_DB.startswith("postgresql") else f"sqlite:///{tmp_path / 'login.db'}"
    app = create_app(base_config(UPLOAD_FOLDER=str(tmp_path / "uploads"), SQLALCHEMY_DATABASE_URI=url,
                                 LOGIN_MAX_FAILURES=LIMIT,
                                 SQLALCHEMY_ENGINE_OPTIONS={"pool_size": THREADS + 2, "max_overflow": 2}))
    if url.startswith("sqlite"):
        with app.app_context():
            db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def victim(real_app):
    from helpdesk.accounts.models import AuditLog, User
    from helpdesk.accounts.passwords import hash_password
    from helpdesk.extensions import db

    with real_app.app_context():
        user = User(email=f"guess-{uuid.uuid4().hex[:10]}@example.jp", name="総当り 対象", roles="requester",
                    password_hash=hash_password(PASSWORD), must_change_password=False)
        db.session.add(user)
        db.session.commit()
        user_id, email = user.id, user.email
    yield user_id, email
    with real_app.app_context():
        if db.engine.dialect.name == "postgresql":  # the audit log refuses DELETE: triggers off for this cleanup
            db.session.execute(text("SET LOCAL session_replication_role = replica"))
        db.session.execute(delete(AuditLog).where(AuditLog.object_type == "user", AuditLog.object_id == str(user_id)))
        db.session.execute(delete(User).where(User.id == user_id))
        db.session.commit()


def _count_checks(monkeypatch) -> list[int]:
    """Count real password checks (against the account's hash, not the dummy one)."""
    from helpdesk.accounts import service

    checks, lock, real = [0], threading.Lock(), service.verify_password

    def counting(stored, password):
        if stored is not None:
            with lock:
                checks[0] += 1
        return real(stored, password)

    monkeypatch.setattr(service, "verify_password", counting)
    return checks


def _race(app, email: str, passwords: list[str]) -> list[int]:
    barrier = threading.Barrier(len(passwords))
    codes: list = [None] * len(passwords)

    def post(i):
        client = app.test_client()
        barrier.wait()
        codes[i] = client.post("/login", data={"email": email, "password": passwords[i]}).status_code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(passwords))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return codes


def test_parallel_wrong_passwords_check_at_most_the_limit(real_app, victim, monkeypatch):
    from helpdesk.accounts.models import AuditLog, User
    from helpdesk.extensions import db

    user_id, email = victim
    checks = _count_checks(monkeypatch)
    codes = _race(real_app, email, [f"Wrong-Passw0rd-{i}" for i in range(THREADS)])
    assert codes == [401] * THREADS
    assert checks[0] == LIMIT  # was up to 19 of 20 before the counter was atomic
    with real_app.app_context():
        user = db.session.get(User, user_id)
        assert user.failed_logins == LIMIT and user.is_locked()
        actions = dict(db.session.execute(
            select(AuditLog.action, func.count()).where(AuditLog.object_type == "user",
                                                         AuditLog.object_id == str(user_id))
            .group_by(AuditLog.action)).all())
    assert actions == {"login.failed": LIMIT, "login.refused": THREADS - LIMIT, "user.locked": 1}
    # The right password is refused too while locked, and is not even checked.
    assert real_app.test_client().post("/login", data={"email": email, "password": PASSWORD}).status_code == 401
    assert checks[0] == LIMIT


def test_right_password_among_racing_wrong_ones(real_app, victim, monkeypatch):
    """The right password wins when it gets one of the attempts; it clears the counter, so no lock follows."""
    from helpdesk.accounts.models import User
    from helpdesk.extensions import db

    user_id, email = victim
    checks = _count_checks(monkeypatch)
    codes = _race(real_app, email, [PASSWORD] + [f"Wrong-Passw0rd-{i}" for i in range(LIMIT - 2)])
    assert codes[0] == 302 and codes[1:] == [401] * (LIMIT - 2)
    assert checks[0] == LIMIT - 1
    with real_app.app_context():
        user = db.session.get(User, user_id)
        assert not user.is_locked() and user.failed_logins < LIMIT and user.last_login_at is not None


def test_expired_lock_opens_a_fresh_window(real_app, victim, monkeypatch):
    import datetime as dt

    from helpdesk.accounts.models import User
    from helpdesk.common import utcnow
    from helpdesk.extensions import db

    user_id, email = victim
    with real_app.app_context():
        user = db.session.get(User, user_id)
        user.failed_logins, user.locked_at = LIMIT, utcnow() - dt.timedelta(hours=1)
        user.locked_until = utcnow() - dt.timedelta(minutes=1)
        db.session.commit()
    checks = _count_checks(monkeypatch)
    codes = _race(real_app, email, [f"Wrong-Passw0rd-{i}" for i in range(THREADS)])
    assert codes == [401] * THREADS and checks[0] == LIMIT
    with real_app.app_context():
        user = db.session.get(User, user_id)
        assert user.is_locked() and user.failed_logins == LIMIT
