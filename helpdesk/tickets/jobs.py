"""Background jobs of the tickets domain (plain functions taking primitives; idempotent)."""
from __future__ import annotations

import logging
from helpdesk.audit import Actor
from helpdesk.extensions import db
from helpdesk.tickets.service import auto_close_resolved

logger = logging.getLogger(__name__)


def auto_close(days: int = 7) -> int:
    """Close tickets resolved more than `days` days ago; running it twice closes nothing more."""
    closed = auto_close_resolved(db.session, days, Actor.system("auto-close"))
    logger.info("auto-close: %d tickets closed (resolved > %d days)", closed, days)
    return closed
