"""RQ jobs of the insights domain: plain functions taking ids, safe to run twice."""
from __future__ import annotations

import logging

from helpdesk.extensions import db
from helpdesk.notify import jobs as notify_jobs
from helpdesk.insights import service, trends
from helpdesk.insights.models import Problem

logger = logging.getLogger(__name__)


def assign_new_tickets(ticket_ids: list[int]) -> int:
    """Place new tickets in their recurring groups (and link them to the group's problem); handed over in
    batches by jobs.batch_after_commit. Returns how many found a group."""
    placed = 0
    for ticket_id in ticket_ids:
        placed += service.assign_ticket(db.session, ticket_id) is not None
    return placed


def refresh_all() -> dict:
    """The nightly full run: regroup all tickets, rebuild the trend rollup, flag reappearances, retry deliveries."""
    from sqlalchemy import select

    groups = service.refresh_groups(db.session)
    rollup = trends.refresh_rollups(db.session)
    flagged = 0
    for pid in db.session.scalars(select(Problem.id).where(Problem.status.in_(("fixed", "verified")))).all():
        flagged += service.check_reappearance(db.session, pid)
    delivered = deliver_due()
    return {"groups": groups, "rollup": rollup, "reappeared": flagged, "deliveries": delivered}


def refresh_rollups() -> dict:
    return trends.refresh_rollups(db.session)


def deliver_due() -> int:
    """Retry tracker deliveries whose backoff has elapsed (through the outbox dispatcher)."""
    return notify_jobs.deliver_due(route="tracker")
