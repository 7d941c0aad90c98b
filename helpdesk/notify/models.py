"""The outbox: every outgoing mail and webhook is a row written with the change that caused it."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.common import UTCDateTime, utcnow
from helpdesk.extensions import db

OUTBOX_STATES = ("pending", "sending", "sent", "failed")


class Outbox(db.Model):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("kind IN ('email', 'webhook')", name="kind"),
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state"),
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    #: e-mail address or webhook URL.
    recipient: Mapped[str] = mapped_column(String(2000))
    subject: Mapped[str | None] = mapped_column(String(500))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    #: Extra headers (mail) or the signing-secret reference (webhook).
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The JSON body (webhook), or for a mail queued as a template {"render": {template, lang, ref,
    #: context}}: the delivery job renders body_text/body_html from it and stores them.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: What produced it, e.g. "ticket.received", "sla.at_risk", "webhook:ticket.created", "tracker".
    purpose: Mapped[str] = mapped_column(String(60), index=True)
    #: Unique per logical message: a second attempt to queue the same thing is a no-op.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    #: Free reference to the object behind a webhook (e.g. "problem:12", "subscription:3").
    object_ref: Mapped[str | None] = mapped_column(String(60), index=True)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: A worker's claim on the row; an expired lease means the worker died and the row may be retried.
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Response of the receiver (e.g. the tracker's issue key / URL).
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(order_by="DeliveryAttempt.id",
                                                               back_populates="outbox")

    def __repr__(self) -> str:
        return f"<Outbox {self.id} {self.kind} {self.state}>"


class DeliveryAttempt(db.Model):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ok: Mapped[bool] = mapped_column(default=False)
    #: SMTP reply code or HTTP status.
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)

    outbox: Mapped[Outbox] = relationship(back_populates="attempt_log")
