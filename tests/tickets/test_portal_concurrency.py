"""Concurrent posts of one portal form create exactly one ticket (real PostgreSQL, real commits).

Runs a second app on the test database without the per-test rollback, so that the requests in
the threads commit for real and contend on the `form_nonces` primary key; the rows it creates are
deleted at the end.
"""
import re
import threading
import uuid

import pytest
from sqlalchemy import delete, func, select, text

from tests.conftest import PASSWORD, TEST_DB, base_config

pytestmark = pytest.mark.skipif(not TEST_DB.startswith("postgresql"),
                                reason="needs PostgreSQL (HELPDESK_TEST_DATABASE_URL) for real concurrent commits")

THREADS = 4
ROUNDS = 3


@pytest.fixture
def real_app(tmp_path):
    from helpdesk import create_app

    app = create_app(base_config(UPLOAD_FOLDER=str(tmp_path / "uploads"),
                                 SQLALCHEMY_ENGINE_OPTIONS={"pool_size": THREADS + 2, "max_overflow": 2}))
    yield app
    with app.app_context():
        from helpdesk.extensions import db

        db.session.remove()
        db.engine.dispose()


def _cleanup(app, org_id: int) -> None:
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


def test_concurrent_posts_of_one_form_create_one_ticket(real_app):
    from helpdesk.accounts.models import Organisation, User
    from helpdesk.accounts.passwords import hash_password
    from helpdesk.extensions import db
    from helpdesk.tickets.models import Ticket

    tag = uuid.uuid4().hex[:10]
    with real_app.app_context():
        org = Organisation(code=f"CC{tag}", name="同時送信テスト診療所", kind="clinic", prefecture="東京都")
        db.session.add(org)
        db.session.flush()
        user = User(email=f"concurrent-{tag}@example.jp", name="同時 送信", organisation_id=org.id,
                    roles="requester", password_hash=hash_password(PASSWORD), must_change_password=False)
        db.session.add(user)
        db.session.commit()
        org_id, email = org.id, user.email
    try:
        clients = []
        for _ in range(THREADS):
            client = real_app.test_client()
            assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
            clients.append(client)
        for round_no in range(ROUNDS):
            html = clients[0].get("/portal/new").get_data(as_text=True)
            nonce = re.search(r'name="nonce" type="hidden" value="([^"]+)"', html).group(1)
            data = {"nonce": nonce, "subject": f"同時送信 {round_no}", "description": "二度押しと再送信"}
            barrier = threading.Barrier(THREADS)
            results: list = [None] * THREADS

            def post(i):
                barrier.wait()
                response = clients[i].post("/portal/new", data=data)
                results[i] = (response.status_code, response.headers.get("Location"))

            threads = [threading.Thread(target=post, args=(i,)) for i in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            with real_app.app_context():
                refs = db.session.scalars(select(Ticket.id).where(Ticket.organisation_id == org_id,
                                                                  Ticket.subject == data["subject"])).all()
                assert len(refs) == 1, results
                ref = f"HD-{refs[0]:06d}"
            # Every post ends on the one ticket (the first creates it, the others are told it exists).
            assert all(code == 302 and location.endswith(f"/portal/tickets/{ref}") for code, location in results), results
        with real_app.app_context():
            total = db.session.scalar(select(func.count(Ticket.id)).where(Ticket.organisation_id == org_id))
            assert total == ROUNDS
    finally:
        _cleanup(real_app, org_id)
