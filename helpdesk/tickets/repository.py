"""Ticket rows written outside the ORM unit of work, where a path needs it (speed or concurrency).

Domain code (tickets.service) says what to write; how it is written without the unit of work
(precompiled INSERT … RETURNING, values set as if loaded) stays here.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from helpdesk.common import insert_now
from helpdesk.tickets.models import Ticket, TicketEvent, TicketTag


def insert_ticket(session, ticket: Ticket, tags: list[str]) -> Ticket:
    """INSERT a new ticket and its tags at once (INSERT … RETURNING, no unit of work: the hot path of
    every channel). The ticket then belongs to the session as if loaded, so later changes in the same
    transaction are ordinary versioned UPDATEs; its tag collection is set as loaded (no query for it)."""
    insert_now(session, ticket, attach=True)
    set_committed_value(ticket, "tags", [insert_now(session, TicketTag(ticket_id=ticket.id, tag=tag), attach=True)
                                         for tag in tags])
    return ticket


def insert_event(session, event: TicketEvent) -> TicketEvent:
    """INSERT an append-only timeline event at once (its id is set; it is not tracked by the session)."""
    return insert_now(session, event)


def keep_as_loaded(ticket: Ticket, **values) -> None:
    """Give a committed ticket these values as its loaded state (no reload from the database)."""
    for key, value in values.items():
        set_committed_value(ticket, key, value)


def lock_ticket(session, ticket_id: int) -> Ticket | None:
    """The ticket with fresh values and its row locked until the transaction ends (FOR UPDATE on
    PostgreSQL; SQLite serialises writers anyway). Pending changes in the session are flushed first."""
    return session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update(of=Ticket)
                          .execution_options(populate_existing=True))


def write_unversioned(session, ticket: Ticket, **values) -> None:
    """UPDATE columns of the ticket that are not an edit of it (last activity, search text, first
    response time) without bumping its `version`: a reply then never conflicts with a concurrent
    field change made against the version it read. The loaded object gets the values as committed
    state, so the unit of work does not write them again."""
    session.execute(update(Ticket.__table__).where(Ticket.__table__.c.id == ticket.id).values(**values))
    for key, value in values.items():
        set_committed_value(ticket, key, value)
