"""Ticket rows written outside the ORM unit of work, where a path needs it (speed or concurrency).

Domain code (tickets.service) says what to write; how it is written without the unit of work
(precompiled INSERT … RETURNING, values set as if loaded) stays here.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from helpdesk.tickets.models import Ticket


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
