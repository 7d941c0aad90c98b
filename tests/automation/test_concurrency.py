"""Two or more time-based passes at the same moment (real PostgreSQL, real commits): each ticket still gets
the rule once — the (rule, ticket, 'timed') claim is one INSERT … ON CONFLICT DO NOTHING, so a second pass
waits on the first's uncommitted claim and then skips the ticket."""
import threading
import uuid

from sqlalchemy import delete, func, select

from tests.pg_fixtures import cleanup_org, needs_postgres

pytestmark = needs_postgres

PASSES = 4
TICKETS = 12
THREADS = PASSES  # concurrent connections for real_app's pool


def test_concurrent_timed_passes_apply_once_per_ticket(real_app):
    from helpdesk.accounts.models import Organisation, User
    from helpdesk.audit import Actor
    from helpdesk.automation import jobs, service
    from helpdesk.automation.models import AutomationRule, AutomationRun
    from helpdesk.extensions import db
    from helpdesk.tickets import service as tickets
    from helpdesk.tickets.models import Comment, Ticket, TicketTag

    tag = uuid.uuid4().hex[:10]
    with real_app.app_context():
        org = Organisation(code=f"AU{tag}", name="自動ルール並行テスト", kind="clinic", prefecture="東京都")
        db.session.add(org)
        db.session.flush()
        requester = User(email=f"auto-{tag}@example.jp", name="依頼 次郎", organisation_id=org.id, roles="requester")
        db.session.add(requester)
        db.session.commit()
        org_id = org.id
        ids = [tickets.create_ticket(db.session, actor=Actor(requester.id, requester.email), subject=f"並行 {n}",
                                     requester_id=requester.id).id for n in range(TICKETS)]
        rule_id = service.save_rule(
            db.session, Actor.system("test"), name=f"並行 {tag}", trigger="timed", interval_minutes=5,
            conditions=[{"field": "organisation", "op": "is", "value": f"AU{tag}"}],
            actions=[{"kind": "add_tag", "value": "seen"}, {"kind": "add_note", "text": "一度だけ"}]).id
    try:
        barrier = threading.Barrier(PASSES)
        results, errors = [], []

        def run_pass():
            with real_app.app_context():
                barrier.wait()
                try:
                    results.append(jobs.run_rule(db.session, rule_id))
                except Exception as exc:  # noqa: BLE001 — reported below
                    errors.append(repr(exc))
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=run_pass) for _ in range(PASSES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert sum(r["applied"] for r in results) == TICKETS  # between them, each ticket once
        with real_app.app_context():
            runs = db.session.execute(select(AutomationRun.ticket_id, func.count()).where(
                AutomationRun.rule_id == rule_id).group_by(AutomationRun.ticket_id)).all()
            assert sorted(runs) == [(i, 1) for i in sorted(ids)]
            notes = db.session.scalar(select(func.count()).select_from(Comment).where(Comment.ticket_id.in_(ids)))
            tags = db.session.scalar(select(func.count()).select_from(TicketTag).where(
                TicketTag.ticket_id.in_(ids), TicketTag.tag == "seen"))
            assert notes == TICKETS and tags == TICKETS
            assert db.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.id.in_(ids))) == TICKETS
    finally:
        with real_app.app_context():
            db.session.execute(delete(AutomationRule).where(AutomationRule.id == rule_id))
            db.session.commit()
        cleanup_org(real_app, org_id)
