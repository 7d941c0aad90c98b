"""Concurrent posts of one portal form create exactly one ticket (real PostgreSQL, real commits).

Runs a second app on the test database without the per-test rollback, so that the requests in
the threads commit for real and contend on the `form_nonces` primary key; the rows it creates are
deleted at the end.
"""
import re
import threading
import uuid

from sqlalchemy import func, select

from tests.conftest import PASSWORD
from tests.pg_fixtures import cleanup_org, needs_postgres

pytestmark = needs_postgres

THREADS = 4
ROUNDS = 3


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
        cleanup_org(real_app, org_id)
