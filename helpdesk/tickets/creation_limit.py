"""Per-account limits on creating tickets (anti-automation).

Three buckets, each a fixed window counted like the API rate limit (`helpdesk.api.ratelimit.count`: one
pipelined INCR+EXPIRE in Redis when REDIS_URL is set, shared by every gunicorn worker; this process's
memory otherwise; fail open with one log line when Redis is down):

- ``requester`` — a requester account, whichever way it files: portal form or an API token bound to it
  (TICKET_CREATE_LIMIT_REQUESTER, "10 per 10 minutes");
- ``staff`` — a staff account: phone intake, staff and integration tokens (TICKET_CREATE_LIMIT_STAFF,
  "600 per minute");
- ``mail_sender`` — new tickets by mail, per sender address (TICKET_CREATE_LIMIT_MAIL_SENDER,
  "10 per hour"); replies on an existing ticket are not counted.

A refused creation writes nothing (no ticket, no contact, no outbox row); the first refusal of a window
is written to the audit log and logged, later ones in the same window only answer. The limits apply while
RATELIMIT_ENABLED is on (the default; the test suite turns it off).
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from flask import current_app

from helpdesk import audit
from helpdesk.api.ratelimit import count, parse_limit
from helpdesk.audit import Actor
from helpdesk.config import check_limit

logger = logging.getLogger(__name__)

#: bucket -> (config key, default)
LIMITS = {
    "requester": ("TICKET_CREATE_LIMIT_REQUESTER", "10 per 10 minutes"),
    "staff": ("TICKET_CREATE_LIMIT_STAFF", "600 per minute"),
    "mail_sender": ("TICKET_CREATE_LIMIT_MAIL_SENDER", "10 per hour"),
}


@dataclass(frozen=True)
class Refusal:
    """Why a creation was refused, and when to try again."""

    bucket: str
    amount: int
    window: int
    retry_after: int
    #: The first refusal of this window (the one that is audited and logged).
    first: bool

    @property
    def window_text_ja(self) -> str:
        return _window_text(self.window, ja=True)

    @property
    def window_text_en(self) -> str:
        return _window_text(self.window, ja=False)

    def detail(self) -> str:
        """Japanese then English, for API problem documents and SMTP logs."""
        return (f"短時間に作成されたお問い合わせが多すぎます（上限: {self.window_text_ja}あたり{self.amount}件）。"
                f"{self.retry_after}秒後にもう一度送信してください。 / Too many tickets created in a short time "
                f"(limit: {self.amount} per {self.window_text_en}). Please try again in {self.retry_after} seconds.")


def _window_text(seconds: int, *, ja: bool) -> str:
    for size, ja_unit, en_unit in ((86400, "日", "day"), (3600, "時間", "hour"), (60, "分", "minute")):
        if seconds % size == 0:
            n = seconds // size
            if ja:
                return f"{n}{ja_unit}" if n != 1 or size != 86400 else "1日"
            return en_unit if n == 1 else f"{n} {en_unit}s"
    return f"{seconds}秒" if ja else ("second" if seconds == 1 else f"{seconds} seconds")


def check_config(config) -> None:
    """Refuse a malformed limit (e.g. from HELPDESK_-prefixed variables or a config override) at start-up."""
    for key, default in LIMITS.values():
        check_limit(key, config.get(key) or default)


def bucket_for(user) -> str:
    return "staff" if user.is_staff else "requester"


def _key(bucket: str, subject: str) -> str:
    # Addresses never go into Redis key names in clear.
    digest = hashlib.sha256(subject.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"{bucket}:{digest}"


def hit(bucket: str, subject: str, now: float | None = None) -> Refusal | None:
    """Count one creation for `subject` (a user id or a sender address) in `bucket`; a Refusal when over."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    key_name, default = LIMITS[bucket]
    amount, window = parse_limit(str(current_app.config.get(key_name) or default))
    now = time.time() if now is None else now
    slot = int(now // window)
    n = count(f"helpdesk:ticket-create:{_key(bucket, subject)}:{window}:{slot}", window,
              what="ticket creation limit")
    if n is None or n <= amount:
        return None
    retry = max(1, math.ceil((slot + 1) * window - now))
    return Refusal(bucket, amount, window, retry, first=(n == amount + 1))


def enforce(session, bucket: str, subject: str, actor: Actor, channel: str, *,
            audit_subject: dict | None = None) -> Refusal | None:
    """`hit`, and on the first refusal of a window an audit row (committed on its own) and one log line.

    Call it before anything of the creation is written: the session must hold no pending change.
    """
    refusal = hit(bucket, subject)
    if refusal is not None and refusal.first:
        detail = {"bucket": bucket, "channel": channel, "limit": refusal.amount, "window_seconds": refusal.window,
                  **(audit_subject or {})}
        audit.record(session, actor, "ticket.create_limited", "user" if actor.user_id else "mail",
                     actor.user_id if actor.user_id else None, detail)
        session.commit()
        logger.warning("ticket creation limited: %s %s via %s (%s per %s s); further refusals in this window "
                       "are not logged", bucket, actor.user_id or "sender", channel, refusal.amount, refusal.window)
    return refusal
