"""`helpdesk db upgrade` on an empty database gives exactly the models' schema (SQLite and PostgreSQL)."""
import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from helpdesk import create_app
from helpdesk.db_setup import include_object
from helpdesk.extensions import db
from tests.conftest import base_config


def _upgrade_and_diff(url: str) -> list:
    from flask_migrate import upgrade

    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": include_object,
                                                             "compare_type": True})
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    return diff


def test_sqlite_upgrade_matches_models(tmp_path):
    diff = _upgrade_and_diff(f"sqlite:///{tmp_path / 'm.db'}")
    assert diff == [], f"models and migrations differ (regenerate the migration): {diff}"


@pytest.mark.skipif(not os.environ.get("HELPDESK_TEST_DATABASE_URL", "").startswith("postgresql"),
                    reason="PostgreSQL run only (HELPDESK_TEST_DATABASE_URL)")
def test_postgres_upgrade_matches_models():
    base = make_url(os.environ["HELPDESK_TEST_DATABASE_URL"])
    name = f"hd_migcheck_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                          "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
    try:
        diff = _upgrade_and_diff(base.set(database=name).render_as_string(hide_password=False))
        assert diff == [], f"models and migrations differ (regenerate the migration): {diff}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
