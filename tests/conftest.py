"""Shared fixtures: one app per session, one rolled-back transaction per test, factories.

The suite runs on in-memory SQLite by default, and on PostgreSQL + Redis when
HELPDESK_TEST_DATABASE_URL / HELPDESK_TEST_REDIS_URL are set (CI's service run).
"""
from __future__ import annotations

import itertools
import os

import pytest
from sqlalchemy import event

from helpdesk import create_app
from helpdesk.extensions import db as _db

TEST_DB = os.environ.get("HELPDESK_TEST_DATABASE_URL", "sqlite://")
TEST_REDIS = os.environ.get("HELPDESK_TEST_REDIS_URL")
PASSWORD = "Test-Passw0rd!"

# real_app / cleanup_org / needs_postgres: tests that commit for real on PostgreSQL (concurrency).
pytest_plugins = ("tests.pg_fixtures",)


def base_config(**overrides) -> dict:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "RQ_ASYNC": False,
        "JOBS_RAISE": True,
        "REDIS_URL": TEST_REDIS,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SQLALCHEMY_DATABASE_URI": TEST_DB,
        "SQLALCHEMY_ENGINE_OPTIONS": {},  # connections pinged when idle (DB_PING_IDLE_SECONDS), as deployed
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": 9,  # nothing listens: mail only goes out in tests that start an SMTP peer
        "SESSION_COOKIE_SECURE": False,
        # Each test's rows are rolled back underneath the session: a cache would outlive them.
        # tests/test_lookup_cache.py turns it on where it is the subject.
        "LOOKUP_CACHE_SECONDS": 0,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    app = create_app(base_config(UPLOAD_FOLDER=str(tmp_path_factory.mktemp("uploads"))))
    app.config["RQ_ASYNC"] = False
    with app.app_context():
        if _db.engine.dialect.name == "sqlite":  # pysqlite breaks SAVEPOINT unless SQLAlchemy emits BEGIN
            event.listen(_db.engine, "connect", lambda c, r: setattr(c, "isolation_level", None))
            event.listen(_db.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        _db.drop_all()
        _db.create_all()
        from helpdesk.db_setup import install_extras

        install_extras(_db.engine)
    yield app
    with app.app_context():
        _db.drop_all()


@pytest.fixture(autouse=True)
def db(app):
    """Run each test in one outer transaction; app commits/rollbacks hit a SAVEPOINT."""
    with app.app_context():
        engines, saved, opened = _db.engines, dict(_db.engines), []
        for key, engine in saved.items():
            conn = engine.connect()
            opened.append((conn, conn.begin()))
            engines[key] = conn
        _db.session.remove()
        _db.session.session_factory.configure(join_transaction_mode="create_savepoint")
        try:
            from helpdesk.tickets.service import ensure_categories

            ensure_categories(_db.session)
            _db.session.commit()
            yield _db
        finally:
            _db.session.remove()
            for conn, trans in opened:
                trans.rollback()
                conn.close()
            engines.update(saved)


@pytest.fixture
def client(app):
    return app.test_client()


_seq = itertools.count(1)


@pytest.fixture
def make_org(db):
    from helpdesk.accounts.models import Organisation

    def make(kind="clinic", parent=None, prefecture="東京都", name=None, code=None):
        n = next(_seq)
        org = Organisation(code=code or f"T{n:06d}", name=name or f"テスト組織{n}", kind=kind,
                           prefecture=prefecture, parent_id=parent.id if parent else None)
        db.session.add(org)
        db.session.commit()
        return org

    return make


@pytest.fixture
def make_user(db):
    from helpdesk.accounts.models import User
    from helpdesk.accounts.passwords import hash_password

    hashed = hash_password(PASSWORD)

    def make(roles="requester", org=None, email=None, name=None, must_change_password=False, **fields):
        n = next(_seq)
        user = User(email=email or f"user{n}@example.jp", name=name or f"利用者 {n}", roles=roles,
                    organisation_id=org.id if org else None, password_hash=hashed,
                    must_change_password=must_change_password, **fields)
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_ticket(db, make_org, make_user):
    from helpdesk.audit import Actor
    from helpdesk.tickets import service

    def make(org=None, requester=None, subject="ログインできません", body="初期パスワードでログインできません。",
             channel="web", actor=None, **kwargs):
        if requester is None:
            org = org or make_org()
            requester = make_user(org=org)
        actor = actor or Actor(requester.id, requester.email)
        return service.create_ticket(db.session, actor=actor, subject=subject, body=body, channel=channel,
                                     requester_id=requester.id,
                                     organisation_id=(org.id if org else requester.organisation_id), **kwargs)

    return make


@pytest.fixture
def login(client):
    """Sign `user` in through the real login form."""

    def do(user, password=PASSWORD):
        response = client.post("/login", data={"email": user.email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response

    return do


@pytest.fixture
def agent(make_user):
    return make_user(roles="agent", email="agent@helpdesk.example.jp", name="受付 テスト")


def pytest_sessionfinish(session, exitstatus):
    """In CI's service run a skipped test is a failure (HELPDESK_FORBID_SKIPS=1)."""
    if os.environ.get("HELPDESK_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        for report in skipped:
            print(f"\nSKIP NOT ALLOWED: {report.nodeid}: {report.longrepr}")
        session.exitstatus = 1
