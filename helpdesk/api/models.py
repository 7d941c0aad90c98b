"""API tokens, idempotency records and webhook subscriptions."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.common import TimestampMixin, UTCDateTime, utcnow
from helpdesk.extensions import db

#: Scopes a token may carry. `read` covers every GET; `tickets:write` creating/updating tickets,
#: replies and help requests; `problems:write` linking tickets to problems; `admin` everything.
SCOPES = ("read", "tickets:write", "problems:write", "admin")
WEBHOOK_EVENTS = ("ticket.created", "ticket.updated", "ticket.resolved", "problem.created", "problem.updated")


class ApiToken(TimestampMixin, db.Model):
    """A per-integration bearer token; the token acts as its bound user (same scoping as the web UI)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: The first characters of the token (e.g. "hd_AbC12345"), shown in lists to recognise it.
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    #: SHA-256 (hex) of the full token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Space-separated subset of SCOPES.
    scopes: Mapped[str] = mapped_column(String(200), default="read")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_ip: Mapped[str | None] = mapped_column(String(45))

    user = relationship("User", foreign_keys=[user_id], lazy="joined")

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    def allows(self, scope: str) -> bool:
        scopes = self.scope_set
        if "admin" in scopes:
            return True
        if scope == "read":
            return bool(scopes)  # every token may read what its user may see
        return scope in scopes

    def state(self, now: dt.datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


class IdempotencyRecord(db.Model):
    """The stored answer of a POST sent with an Idempotency-Key; a retry gets the same answer."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("token_id", "key", name="uq_api_idempotency_token_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of method + path + the canonical JSON body.
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class WebhookSubscription(TimestampMixin, db.Model):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    #: HMAC-SHA256 key; shown once at creation, used to sign every delivery.
    secret: Mapped[str] = mapped_column(String(128))
    #: Space-separated subset of WEBHOOK_EVENTS.
    events: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    description: Mapped[str | None] = mapped_column(Text)

    @property
    def event_set(self) -> frozenset[str]:
        return frozenset(self.events.split())

    @property
    def secret_ref(self) -> str:
        return f"webhook_subscription:{self.id}"
