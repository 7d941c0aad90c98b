"""Round robin under concurrent ticket creation (real PostgreSQL, real commits): the rule row is locked
(SELECT … FOR UPDATE), so tickets created at the same moment by several threads still go round evenly."""
import threading
import uuid
from collections import Counter

from sqlalchemy import delete, select

from tests.pg_fixtures import cleanup_org, needs_postgres

pytestmark = needs_postgres

THREADS = 6
PER_THREAD = 3


def test_concurrent_creations_take_turns(real_app):
    from helpdesk.accounts.models import Organisation, User
    from helpdesk.audit import Actor
    from helpdesk.extensions import db
    from helpdesk.tickets import assignment, service
    from helpdesk.tickets.models import AssignmentRule, Ticket

    tag = uuid.uuid4().hex[:10]
    with real_app.app_context():
        org = Organisation(code=f"AA{tag}", name="自動割当テスト卸", kind="wholesaler", prefecture="東京都")
        db.session.add(org)
        db.session.flush()
        requester = User(email=f"rr-req-{tag}@example.jp", name="依頼 太郎", organisation_id=org.id,
                         roles="requester")
        # The agents belong to the test organisation only so that the clean-up finds them.
        agents = [User(email=f"rr-{n}-{tag}@example.jp", name=f"受付 {n}", organisation_id=org.id,
                       roles="agent", state="activated") for n in range(3)]
        db.session.add_all([requester, *agents])
        db.session.commit()
        org_id, requester_id, agent_ids = org.id, requester.id, [a.id for a in agents]
        for a in agent_ids:
            assignment.set_shift(db.session, Actor.system("test"), a, True)
        rule_id = assignment.save_rule(db.session, Actor.system("test"), name=f"卸 {tag}", category_id=None,
                                       role="wholesaler", mode="round_robin", agent_ids=agent_ids).id
    try:
        barrier = threading.Barrier(THREADS)
        errors: list = []

        def create(i):
            with real_app.app_context():
                barrier.wait()
                try:
                    for k in range(PER_THREAD):
                        service.create_ticket(db.session, actor=Actor(requester_id, "req"), subject=f"同時 {i}-{k}",
                                              requester_id=requester_id)
                except Exception as exc:  # noqa: BLE001 — reported below
                    errors.append(repr(exc))
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=create, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        with real_app.app_context():
            got = Counter(db.session.scalars(select(Ticket.assignee_id).where(Ticket.organisation_id == org_id)))
            # 18 tickets, 3 agents: exactly 6 each (without the row lock, threads reading the same
            # last_agent_id give the same agent).
            assert got == {a: THREADS * PER_THREAD // 3 for a in agent_ids}, got
    finally:
        with real_app.app_context():
            db.session.execute(delete(AssignmentRule).where(AssignmentRule.id == rule_id))
            db.session.commit()
        cleanup_org(real_app, org_id)
