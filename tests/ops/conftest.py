"""Fixtures for operations tests: whole, committed databases of their own (SQLite files, or new PostgreSQL
databases next to the test database), because backups, restores and exports read committed data."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from helpdesk import create_app
from tests.conftest import base_config

TEST_DB = os.environ.get("HELPDESK_TEST_DATABASE_URL", "sqlite://")
ON_PG = TEST_DB.startswith("postgresql")
#: SQLite always; PostgreSQL too when the run has one.
BACKENDS = ["sqlite"] + (["postgresql"] if ON_PG else [])


@pytest.fixture
def new_database(tmp_path):
    """new_database(kind) -> URL of a new, empty database; PostgreSQL ones are dropped afterwards."""
    made = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        base = make_url(TEST_DB)
        name = f"{base.database}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                              "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
        admin.dispose()
        made.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    yield make
    if made:
        admin = create_engine(make_url(TEST_DB), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def ops_app(url: str, uploads: str, **overrides):
    """An app on its own database (not the per-test rolled-back one) with jobs in-process."""
    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=url, UPLOAD_FOLDER=uploads, REDIS_URL=None,
                                 RQ_ASYNC=False, **overrides))
    app.config["RQ_ASYNC"] = False
    return app


def migrate(app) -> None:
    from flask_migrate import upgrade

    from helpdesk.extensions import db
    from helpdesk.tickets.service import ensure_categories

    with app.app_context():
        upgrade()
        ensure_categories(db.session)
        db.session.commit()


def run_cli(app, args: list[str]):
    """Run a `helpdesk` command on `app` (inside its context: the test's own app context is active)."""
    from helpdesk.extensions import db

    with app.app_context():
        result = app.test_cli_runner().invoke(args=args)
        db.session.remove()
        db.engine.dispose()
    return result
