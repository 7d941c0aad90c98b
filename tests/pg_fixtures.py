"""Fixtures for tests that need real commits on PostgreSQL (concurrency), loaded by tests/conftest.py.

`real_app` is a second app on the test database without the per-test rollback, so requests and jobs in
threads commit for real and contend on rows and locks; `cleanup_org` deletes what such a test committed.
A module using them skips on SQLite with `pytestmark = needs_postgres` and sets `THREADS` to the number of
concurrent workers (the pool holds that many connections, plus two).
"""
from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text

from tests.conftest import TEST_DB, base_config

needs_postgres = pytest.mark.skipif(not TEST_DB.startswith("postgresql"),
                                    reason="needs PostgreSQL (HELPDESK_TEST_DATABASE_URL) for real concurrent commits")


@pytest.fixture
def real_app(request, tmp_path):
    from helpdesk import create_app
    from helpdesk.extensions import db

    threads = getattr(request.module, "THREADS", 4)
    app = create_app(base_config(UPLOAD_FOLDER=str(tmp_path / "uploads"),
                                 SQLALCHEMY_ENGINE_OPTIONS={"pool_size": threads + 2, "max_overflow": 2}))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def cleanup_org(app, org_id: int) -> None:
    """Delete what the test committed: rows pointing at its tickets and users, then those, then the org."""
    from helpdesk.accounts.models import Organisation, User
    from helpdesk.extensions import db
    from helpdesk.tickets.models import Ticket

    with app.app_context():
        session = db.session
        # The audit log refuses DELETE (a trigger); this test's own rows are removed with triggers
        # off for this transaction only (superuser on the test database), so no test data lingers.
        session.execute(text("SET LOCAL session_replication_role = replica"))
        user_ids = session.scalars(select(User.id).where(User.organisation_id == org_id)).all()
        ticket_ids = session.scalars(select(Ticket.id).where(Ticket.organisation_id == org_id)).all()
        targets = {"tickets": ticket_ids, "users": user_ids}
        for table in reversed(db.metadata.sorted_tables):
            if table.name in ("tickets", "users", "organisations"):
                continue
            for column in table.columns:
                for fk in column.foreign_keys:
                    ids = targets.get(fk.column.table.name)
                    if ids and fk.column.name == "id":
                        session.execute(delete(table).where(column.in_(ids)))
        if ticket_ids:
            session.execute(delete(Ticket).where(Ticket.id.in_(ticket_ids)))
        if user_ids:
            session.execute(delete(User).where(User.id.in_(user_ids)))
        session.execute(delete(Organisation).where(Organisation.id == org_id))
        session.commit()
