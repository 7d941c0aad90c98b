"""Queue outgoing mail and webhooks in the outbox; delivery happens in jobs after the commit."""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from helpdesk import jobs
from helpdesk.notify.models import Outbox

logger = logging.getLogger(__name__)


def _queue(session, row: Outbox) -> Outbox | None:
    if row.dedupe_key:
        existing = session.scalar(select(Outbox).where(Outbox.dedupe_key == row.dedupe_key))
        if existing is not None:
            return None
    session.add(row)
    session.flush()
    jobs.enqueue_after_commit(session, "helpdesk.notify.jobs.deliver", row.id, queue="notify")
    return row


def queue_email(session, *, to: str, subject: str, body_text: str, body_html: str | None = None,
                purpose: str, ticket_id: int | None = None, dedupe_key: str | None = None,
                headers: dict | None = None) -> Outbox | None:
    """Add a mail to the outbox (same transaction as the caller's change); None if already queued."""
    return _queue(session, Outbox(kind="email", recipient=to, subject=subject, body_text=body_text,
                                  body_html=body_html, purpose=purpose, ticket_id=ticket_id,
                                  dedupe_key=dedupe_key, headers=headers))


def queue_webhook(session, *, url: str, payload: dict, purpose: str, secret_ref: str | None = None,
                  object_ref: str | None = None, ticket_id: int | None = None,
                  dedupe_key: str | None = None) -> Outbox | None:
    """Add a webhook delivery to the outbox; `secret_ref` names where the signing secret lives."""
    return _queue(session, Outbox(kind="webhook", recipient=url, payload=payload, purpose=purpose,
                                  headers={"secret_ref": secret_ref} if secret_ref else None,
                                  object_ref=object_ref, ticket_id=ticket_id, dedupe_key=dedupe_key))
