"""Signal receivers: every new ticket is offered to the recurring groups after its commit."""
from __future__ import annotations

from helpdesk import signals


def _on_ticket_created(session, ticket=None, **_):
    if ticket is not None and ticket.id is not None:
        from helpdesk.insights.service import schedule_assignment

        schedule_assignment(session, ticket.id)


def connect() -> None:
    signals.ticket_created.connect(_on_ticket_created, weak=False)
