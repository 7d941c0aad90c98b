"""RQ jobs of the API domain: webhook delivery (idempotent: a sent row is never sent again)."""
from __future__ import annotations

import logging

from flask import current_app

from helpdesk.api import webhooks
from helpdesk.extensions import db

logger = logging.getLogger(__name__)


def deliver_webhook(outbox_id: int) -> str:
    """Deliver one webhook outbox row (claimed with a lease, so two workers never both send it)."""
    state = webhooks.deliver(db.session, outbox_id,
                             allowed_hosts=current_app.config.get("WEBHOOK_ALLOWED_HOSTS") or ())
    logger.info("webhook outbox %s: %s", outbox_id, state)
    return state


def sweep_webhooks() -> int:
    """Retry every webhook that is due (failed attempts wait with exponential backoff)."""
    count = 0
    for outbox_id in webhooks.due_webhooks(db.session):
        deliver_webhook(outbox_id)
        count += 1
    return count
