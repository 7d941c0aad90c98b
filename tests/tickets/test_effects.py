"""The effects of ticket changes (tickets/effects.py): all inside the caller's transaction, in order."""
from sqlalchemy import event, select

from helpdesk import signals
from helpdesk.api import service as api_service
from helpdesk.audit import Actor
from helpdesk.insights.models import RecurringGroup  # noqa: F401  (all mappers configured)
from helpdesk.notify.models import Outbox
from helpdesk.sla.models import SlaClock
from helpdesk.tickets import service
from helpdesk.tickets.models import Ticket


def _subscribe(db, events):
    # A loopback URL allowed at subscription time only: the in-process delivery after each commit
    # refuses it (no WEBHOOK_ALLOWED_HOSTS), so these tests send nothing anywhere.
    return api_service.create_subscription(db.session, name="受信", url="http://127.0.0.1:9/in",
                                           events=events, actor=Actor.system("t"), allowed_hosts=["127.0.0.1"])


def test_create_writes_due_dates_in_the_insert_then_clock_mail_webhook_and_extension(db, app, make_org, make_user):
    sub = _subscribe(db, ["ticket.created"])
    org = make_org()
    requester = make_user(org=org)
    statements: list[str] = []
    seen_by_extension: list[tuple] = []

    def watch(conn, cursor, statement, params, context, executemany):
        statements.append((statement, params))

    def extension(session, ticket=None, actor=None, event=None, **_):
        # The extension point runs last: every core effect is already in the transaction.
        kinds = session.scalars(select(Outbox.purpose).where(Outbox.ticket_id == ticket.id)).all()
        seen_by_extension.append((session.get(SlaClock, ticket.id) is not None, sorted(kinds), event.kind))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", watch)
    signals.ticket_created.connect(extension)
    try:
        ticket = service.create_ticket(db.session, actor=Actor.for_user(requester), subject="在庫が表示されない",
                                       requester_id=requester.id, commit=False)
    finally:
        signals.ticket_created.disconnect(extension)
        event.remove(engine, "before_cursor_execute", watch)
    # 1. The SLA due dates went into the ticket's INSERT (no UPDATE of the ticket afterwards).
    inserts = [s for s, _ in statements if s.lstrip().upper().startswith("INSERT INTO TICKETS ")]
    assert len(inserts) == 1 and "first_response_due_at" in inserts[0]
    assert not [s for s, _ in statements if s.lstrip().upper().startswith("UPDATE TICKETS ")]
    assert ticket.first_response_due_at is not None and ticket.resolution_due_at is not None
    # 2. SLA clock, 3. requester mail, 4. webhook row — all before the commit, seen by the extension.
    assert seen_by_extension == [(True, ["ticket.ticket_received", "webhook:ticket.created"], "created")]
    # 5. The insights pass is scheduled for after the commit.
    batches = db.session.info.get("helpdesk_after_commit_batches") or []
    assert ("helpdesk.insights.jobs.assign_new_tickets", ticket.id) in [(f, i) for f, i, *_ in batches]
    # A rollback leaves none of it behind.
    ticket_id = ticket.id
    db.session.rollback()
    assert db.session.get(Ticket, ticket_id) is None
    assert db.session.get(SlaClock, ticket_id) is None
    assert not db.session.scalars(select(Outbox).where(Outbox.object_ref == f"subscription:{sub.id}")).all()
    assert not db.session.info.get("helpdesk_after_commit_batches")


def test_status_change_moves_clock_then_mails_and_queues_webhooks(db, make_ticket, agent):
    _subscribe(db, ["ticket.updated", "ticket.resolved"])
    ticket = make_ticket()
    service.change_status(db.session, ticket.id, "pending", Actor.for_user(agent))
    assert ticket.sla_paused_at is not None
    service.change_status(db.session, ticket.id, "open", Actor.for_user(agent))
    assert ticket.sla_paused_at is None
    service.change_status(db.session, ticket.id, "resolved", Actor.for_user(agent))
    clock = db.session.get(SlaClock, ticket.id)
    assert clock.stopped_at is not None
    purposes = db.session.scalars(select(Outbox.purpose).where(Outbox.ticket_id == ticket.id)
                                  .order_by(Outbox.id)).all()
    assert purposes.count("webhook:ticket.updated") == 3
    assert purposes.count("webhook:ticket.resolved") == 1
    assert purposes.count("ticket.resolved") == 1  # the requester's mail


def test_reply_effects_and_extension_point(db, make_ticket, agent):
    ticket = make_ticket()
    heard = []

    def extension(session, ticket=None, actor=None, comment=None, **_):
        heard.append((comment.id, ticket.status))

    signals.comment_added.connect(extension)
    try:
        comment = service.add_comment(db.session, ticket.id, "再設定のリンクをお送りしました。", Actor.for_user(agent))
    finally:
        signals.comment_added.disconnect(extension)
    # The reply's own status change (new → open) ran its effects before the reply's.
    assert heard == [(comment.id, "open")]
    assert ticket.first_response_at is not None
    mail = db.session.scalar(select(Outbox).where(Outbox.ticket_id == ticket.id, Outbox.purpose == "ticket.public_reply"))
    assert mail is not None and comment.message_id == mail.headers["Message-ID"]


def test_merge_runs_effects_for_each_recorded_change(db, make_ticket, agent):
    _subscribe(db, ["ticket.updated"])
    source, target = make_ticket(), make_ticket()
    service.merge_tickets(db.session, source.id, target.id, Actor.for_user(agent))
    kinds = [r.payload["data"]["change"]["kind"] for r in db.session.scalars(
        select(Outbox).where(Outbox.purpose == "webhook:ticket.updated").order_by(Outbox.id))]
    assert kinds == ["merge", "merged_in", "status", "status"]
    assert db.session.get(SlaClock, source.id).stopped_at is not None
    # A merge closes the source without the 'resolved' mail to its requester.
    assert db.session.scalar(select(Outbox).where(Outbox.ticket_id == source.id,
                                                  Outbox.purpose == "ticket.resolved")) is None
