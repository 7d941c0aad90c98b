"""SLA rows written outside the ORM unit of work on the ticket-creation hot path."""
from __future__ import annotations

from helpdesk.common import insert_now
from helpdesk.sla.models import SlaClock


def insert_clock(session, clock: SlaClock) -> SlaClock:
    """INSERT a new ticket's clock row at once (one precompiled statement; see common.insert_now)."""
    return insert_now(session, clock)
