"""Signal receivers: ticket creation and changes move the SLA clock (inside the caller's transaction)."""
from __future__ import annotations

import logging

from helpdesk import signals

logger = logging.getLogger(__name__)


def _on_creating(session, ticket=None, actor=None, **_):
    from helpdesk.sla import service

    service.start_clock(session, ticket, actor)


def _on_created(session, ticket=None, actor=None, event=None, **_):
    from helpdesk.sla import service

    service.on_ticket_created(session, ticket, actor, at=getattr(event, "at", None))


def _on_changed(session, ticket=None, actor=None, event=None, **_):
    from helpdesk.sla import service

    if event is None:
        return
    at = event.at
    if event.kind == "status":
        service.on_status_changed(session, ticket, event.before, event.after, actor, at=at)
    elif event.kind == "priority":
        service.on_priority_changed(session, ticket, actor, at=at)
    elif event.kind == "category":
        service.on_category_changed(session, ticket, actor, at=at)


def _on_comment(session, ticket=None, actor=None, comment=None, **_):
    from helpdesk.sla import service
    from helpdesk.sla.models import SlaClock

    # A first public reply ends the first-response clock: the badge may drop from at-risk to ok.
    if ticket is not None and comment is not None and comment.is_public and ticket.first_response_at is not None:
        clock = session.get(SlaClock, ticket.id)
        if clock is not None and ticket.sla_state == "at_risk":
            ticket.sla_state = service._next_state(ticket.sla_state, service._state_now(
                ticket, clock, comment.created_at or service.utcnow()))


def connect() -> None:
    signals.ticket_creating.connect(_on_creating)
    signals.ticket_created.connect(_on_created)
    signals.ticket_changed.connect(_on_changed)
    signals.comment_added.connect(_on_comment)
