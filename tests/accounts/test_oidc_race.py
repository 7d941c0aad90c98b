"""Concurrent first single sign-ons of one person link one identity (and create one account when
OIDC_AUTO_CREATE is on), and every one of them signs in.

A second app commits for real (no per-test rollback), as in test_login_concurrency.py: on PostgreSQL the
test database, on SQLite a database file in the test's temporary folder. Each thread has its own app
context, so its own session and connection; a barrier releases them together. The losers of the race to
insert (issuer, subject) hit the unique constraint and find the winner's link on their retry.
"""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import delete, func, select, text

from tests.conftest import TEST_DB, base_config

THREADS = 8


@pytest.fixture
def real_app(tmp_path):
    from helpdesk import create_app
    from helpdesk.extensions import db

    url = TEST_DB if TEST_DB.startswith("postgresql") else f"sqlite:///{tmp_path / 'sso.db'}"
    app = create_app(base_config(UPLOAD_FOLDER=str(tmp_path / "uploads"), SQLALCHEMY_DATABASE_URI=url,
                                 SQLALCHEMY_ENGINE_OPTIONS={"pool_size": THREADS + 2, "max_overflow": 2}))
    if url.startswith("sqlite"):
        with app.app_context():
            db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(params=["existing", "auto_create"])
def person(real_app, request):
    """(user id or None, e-mail): an existing agent, or nobody yet (created by the first sign-in)."""
    from helpdesk.accounts.models import AuditLog, User
    from helpdesk.accounts.oidc import UserIdentity
    from helpdesk.extensions import db

    email = f"sso-{uuid.uuid4().hex[:10]}@helpdesk.example.jp"
    user_id = None
    if request.param == "existing":
        with real_app.app_context():
            user = User(email=email, name="同時 花子", roles="agent", must_change_password=False)
            db.session.add(user)
            db.session.commit()
            user_id = user.id
    yield user_id, email
    with real_app.app_context():
        ids = [str(i) for i in db.session.scalars(select(User.id).where(User.email == email))]
        if db.engine.dialect.name == "postgresql":  # the audit log refuses DELETE: triggers off for this cleanup
            db.session.execute(text("SET LOCAL session_replication_role = replica"))
        db.session.execute(delete(AuditLog).where(AuditLog.object_type == "user", AuditLog.object_id.in_(ids)))
        db.session.execute(delete(UserIdentity).where(UserIdentity.user_id.in_([int(i) for i in ids])))
        db.session.execute(delete(User).where(User.email == email))
        db.session.commit()


def test_racing_first_sign_ins_link_once(real_app, person):
    from helpdesk.accounts import oidc
    from helpdesk.accounts.models import AuditLog
    from helpdesk.accounts.oidc import UserIdentity
    from helpdesk.extensions import db

    user_id, email = person
    cfg = oidc.settings({"OIDC_ISSUER": "https://idp.example.jp", "OIDC_CLIENT_ID": "helpdesk",
                         "OIDC_CLIENT_SECRET": "s", "OIDC_AUTO_CREATE": user_id is None})
    subject = f"sub-{uuid.uuid4().hex[:8]}"
    claims = {"iss": cfg.issuer, "sub": subject, "email": email, "email_verified": True}
    barrier = threading.Barrier(THREADS)
    results, errors = [], []

    def sign_in():
        with real_app.app_context():
            try:
                barrier.wait(timeout=30)
                results.append(oidc.sign_in(db.session, cfg, dict(claims), "127.0.0.1").id)
            except Exception as exc:  # noqa: BLE001  (reported below)
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sign_in) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == THREADS and len(set(results)) == 1
    with real_app.app_context():
        from helpdesk.accounts.models import User

        assert db.session.scalars(select(User.id).where(User.email == email)).all() == results[:1]
        created = user_id is None
        assert user_id in (None, results[0])
        user_id = results[0]
        rows = db.session.scalars(select(UserIdentity).where(UserIdentity.user_id == user_id)).all()
        assert [(r.issuer, r.subject) for r in rows] == [(cfg.issuer, subject)]
        count = lambda action: db.session.scalar(  # noqa: E731
            select(func.count()).select_from(AuditLog).where(AuditLog.action == action,
                                                             AuditLog.object_id == str(user_id)))
        assert count("user.identity_linked") == 1
        assert count("login.sso_succeeded") == THREADS
        assert count("user.created") == (1 if created else 0)
