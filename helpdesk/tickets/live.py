"""The live queue: changes to tickets reach open queue pages without a reload, and unread marks.

Every recorded ticket change (a `ticket_events` row) is noted with `note(session, ...)` by the ticket
service; after the commit the notes are PUBLISHed on one Redis channel. Each web process serves
`/agent/queue/stream` (server-sent events): it subscribes to the channel, so a change made through
any gunicorn worker reaches the agents connected to every other worker. An event's SSE id is the
`ticket_events` id: a reconnecting browser sends `Last-Event-ID` and gets what it missed from the
database first. Without Redis (the embedded mode) the page polls `/agent/queue/changes?after=<id>`,
which reads the same rows from the database.

Unread: a ticket is unread for an agent when its requester created it or replied after the agent
last opened it (`ticket_seen`).
"""
from __future__ import annotations

import json
import logging
import time

from sqlalchemy import and_, event, func, select
from sqlalchemy.orm import Session

from helpdesk.common import utcnow
from helpdesk.extensions import db
from helpdesk.jobs import redis_connection
from helpdesk.tickets.models import Ticket, TicketEvent, TicketSeen, format_ref

logger = logging.getLogger(__name__)

CHANNEL = "helpdesk:live:tickets"
_NOTES_KEY = "helpdesk_live_notes"
#: Kinds that count as customer activity when the ticket's requester did them.
CUSTOMER_KINDS = ("created", "reply")
#: Kinds an open queue page reacts to (everything else changes nothing a queue row shows).
QUEUE_KINDS = ("created", "reply", "note", "assignee", "status", "priority", "category", "escalation", "merge")


def note(session, ticket, actor, kind: str, event_id: int | None = None) -> None:
    """Remember a change to publish after the commit (dropped on rollback)."""
    if kind not in QUEUE_KINDS:
        return
    customer = bool(actor.user_id) and actor.user_id == ticket.requester_id and kind in CUSTOMER_KINDS
    session.info.setdefault(_NOTES_KEY, []).append(
        {"id": event_id, "ticket_id": ticket.id, "ref": ticket.ref, "kind": kind, "customer": customer})


def _redis():
    from flask import current_app, has_app_context

    if not has_app_context() or not current_app.config.get("REDIS_URL"):
        return None
    return redis_connection()


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    if session.in_nested_transaction():
        return
    notes = session.info.pop(_NOTES_KEY, None)
    if not notes:
        return
    try:
        conn = _redis()
        if conn is None:
            return  # polling reads ticket_events
        conn.publish(CHANNEL, json.dumps(notes, ensure_ascii=False))
    except Exception as exc:  # live updates are a convenience: never fail the change for them
        logger.warning("live update not published (%s)", exc)


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_NOTES_KEY, None)


# --- reading --------------------------------------------------------------------------------------

def changes_after(session, after_id: int, limit: int = 200) -> list[dict]:
    """Queue-relevant changes recorded after event id `after_id` (polling, and SSE catch-up)."""
    rows = session.execute(
        select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.kind, TicketEvent.actor_id, Ticket.requester_id)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(TicketEvent.id > after_id, TicketEvent.kind.in_(QUEUE_KINDS))
        .order_by(TicketEvent.id).limit(limit)).all()
    return [{"id": r.id, "ticket_id": r.ticket_id, "ref": format_ref(r.ticket_id), "kind": r.kind,
             "customer": bool(r.actor_id) and r.actor_id == r.requester_id and r.kind in CUSTOMER_KINDS}
            for r in rows]


def last_event_id(session) -> int:
    return session.scalar(select(func.max(TicketEvent.id))) or 0


def unread_ids(session, user_id: int, ticket_ids: list[int]) -> set[int]:
    """Of `ticket_ids`, those with customer activity after `user_id` last opened them."""
    if not ticket_ids:
        return set()
    activity = dict(session.execute(
        select(TicketEvent.ticket_id, func.max(TicketEvent.at))
        .join(Ticket, and_(Ticket.id == TicketEvent.ticket_id, Ticket.requester_id == TicketEvent.actor_id))
        .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind.in_(CUSTOMER_KINDS))
        .group_by(TicketEvent.ticket_id)).all())
    if not activity:
        return set()
    seen = dict(session.execute(select(TicketSeen.ticket_id, TicketSeen.seen_at)
                                .where(TicketSeen.user_id == user_id, TicketSeen.ticket_id.in_(list(activity)))).all())
    return {tid for tid, at in activity.items() if tid not in seen or _aware(at) > _aware(seen[tid])}


def _aware(value):
    import datetime as dt

    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def mark_seen(session, user_id: int, ticket_id: int) -> None:
    """The agent opened the ticket now (upsert; committed by the caller)."""
    row = session.get(TicketSeen, (user_id, ticket_id))
    if row is None:
        session.add(TicketSeen(user_id=user_id, ticket_id=ticket_id, seen_at=utcnow()))
    else:
        row.seen_at = utcnow()


def stream(app, after_id: int, *, max_seconds: float = 55.0, heartbeat: float = 15.0):
    """Server-sent events: catch-up from the database, then Redis pub/sub until max_seconds.

    The response ends after `max_seconds` (the browser reconnects with Last-Event-ID) so a thread
    is never held for ever by a tab left open.
    """
    yield "retry: 2000\n\n"
    with app.app_context():
        missed = changes_after(db.session, after_id) if after_id else []
        db.session.remove()  # give the connection back while this thread waits on Redis
        conn = _redis()
    for item in missed:
        yield _frame(item)
    if conn is None:
        yield "event: fallback\ndata: {}\n\n"
        return
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        started = last_beat = time.monotonic()
        while time.monotonic() - started < max_seconds:
            message = pubsub.get_message(timeout=1.0)
            if message and message.get("type") == "message":
                for item in json.loads(message["data"]):
                    yield _frame(item)
            if time.monotonic() - last_beat >= heartbeat:
                last_beat = time.monotonic()
                yield ": keep-alive\n\n"
    finally:
        try:
            pubsub.close()
        except Exception:
            pass


def _frame(item: dict) -> str:
    head = f"id: {item['id']}\n" if item.get("id") else ""
    return f"{head}event: ticket\ndata: {json.dumps(item, ensure_ascii=False)}\n\n"
