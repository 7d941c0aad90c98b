"""Outbox delivery jobs (implemented by the notify domain)."""
import logging

logger = logging.getLogger(__name__)


def deliver(outbox_id: int) -> None:
    """Deliver one outbox row; idempotent (a sent row is never sent again)."""
    logger.info("outbox %s: delivery not implemented yet", outbox_id)
