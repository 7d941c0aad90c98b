"""Outbox delivery jobs: claim a row with a lease, send it once, record the attempt, retry with backoff.

Guarantees:
- two workers never send one row at the same time (the claim is `SELECT … FOR UPDATE SKIP LOCKED`
  on PostgreSQL, a conditional UPDATE on SQLite, and it sets a lease);
- a worker killed mid-delivery loses nothing: the row stays `sending` with a lease that expires,
  and the sweeper hands it to another worker;
- once a send is recorded (`sent`), the row is never sent again (sent rows are never claimed).
  The remaining window — the process dies after the SMTP server accepted the mail but before the
  commit — can repeat a mail once; it carries the same Message-ID, so clients show it once.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import smtplib
import socket
import time
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from flask import current_app
from sqlalchemy import select, update

from helpdesk._optional import import_optional
from helpdesk.common import utcnow
from helpdesk.extensions import db
from helpdesk.notify.models import DeliveryAttempt, Outbox

logger = logging.getLogger(__name__)

LEASE_SECONDS = 120
SMTP_TIMEOUT = 20
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
SENDER_NAME = {"ja": "VDSヘルプデスク", "en": "VDS Help Desk"}


def backoff(attempts: int, rng: random.Random | None = None) -> dt.timedelta:
    """30 s, 1 min, 2 min … capped at 1 h, ±20 % jitter so retries of many rows spread out."""
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    return dt.timedelta(seconds=base * (rng or random).uniform(0.8, 1.2))


def claim(session, outbox_id: int, now: dt.datetime, kind: str = "email") -> Outbox | None:
    """Take the row for this worker (state sending + lease); None if it is not due or someone has it."""
    lease = now + dt.timedelta(seconds=LEASE_SECONDS)
    due = ((Outbox.state == "pending") & (Outbox.next_attempt_at <= now)) | \
          ((Outbox.state == "sending") & (Outbox.lease_until < now))
    if session.get_bind().dialect.name == "postgresql":
        # SKIP LOCKED: a row another worker is claiming right now is simply not ours.
        target = Outbox.id.in_(select(Outbox.id).where(Outbox.id == outbox_id, Outbox.kind == kind, due)
                               .with_for_update(skip_locked=True).scalar_subquery())
    else:
        target = (Outbox.id == outbox_id) & (Outbox.kind == kind) & due  # one conditional UPDATE
    row = session.scalars(update(Outbox).where(target)
                          .values(state="sending", lease_until=lease, attempts=Outbox.attempts + 1)
                          .returning(Outbox)
                          .execution_options(synchronize_session=False, populate_existing=True)).first()
    session.commit()
    return row


def build_message(row: Outbox, config) -> EmailMessage:
    """The MIME message of an email row: text + HTML alternative, UTF-8, RFC 2047 headers."""
    msg = EmailMessage()
    lang = (row.headers or {}).get("lang", "ja")
    msg["From"] = formataddr((config.get("MAIL_FROM_NAME") or SENDER_NAME.get(lang, SENDER_NAME["ja"]),
                              config["MAIL_FROM"]))
    msg["To"] = row.recipient
    msg["Subject"] = row.subject or ""
    msg["Date"] = formatdate(localtime=False)
    for name in ("Message-ID", "In-Reply-To", "References", "Reply-To"):
        value = (row.headers or {}).get(name)
        if value:
            msg[name] = value
    # RFC 3834: ours is an automatic message; other systems' auto-responders should not answer it.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Helpdesk-Outbox"] = str(row.id)
    msg.set_content(row.body_text or "", charset="utf-8")
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html", charset="utf-8")
    return msg


class PermanentFailure(Exception):
    """The receiver refused for good (5xx): retrying would not help."""


def send_smtp(msg: EmailMessage, to: str, config, connection: smtplib.SMTP | None = None) -> int:
    """Send one message; returns the SMTP reply code. Reuses `connection` when given."""
    own = connection is None
    smtp = connection or open_smtp(config)
    try:
        try:
            smtp.send_message(msg, from_addr=config["MAIL_FROM"], to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            if 500 <= code < 600:
                raise PermanentFailure(f"{code} recipient refused: {exc.recipients}") from exc
            raise
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600 and exc.smtp_code not in (421,):
                raise PermanentFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise
        return 250
    finally:
        if own:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def open_smtp(config) -> smtplib.SMTP:
    smtp = smtplib.SMTP(config["MAIL_SERVER"], int(config["MAIL_PORT"]), timeout=SMTP_TIMEOUT)
    if config.get("MAIL_USE_TLS"):
        smtp.starttls()
    if config.get("MAIL_USERNAME"):
        smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
    return smtp


def _finish(session, row: Outbox, now: dt.datetime, ok: bool, code: int | None, error: str | None,
            started: float, permanent: bool = False) -> str:
    duration = int((time.monotonic() - started) * 1000)
    session.add(DeliveryAttempt(outbox_id=row.id, at=now, ok=ok, status_code=code, error=error,
                                duration_ms=duration))
    values: dict = {"lease_until": None}
    if ok:
        values.update(state="sent", sent_at=utcnow(), last_error=None)
    else:
        values["last_error"] = error
        if permanent or row.attempts >= (row.max_attempts or 8):
            values["state"] = "failed"
        else:
            values.update(state="pending", next_attempt_at=utcnow() + backoff(row.attempts))
    # Only the claim holder may finish the row (its lease is still ours: state is 'sending').
    session.execute(update(Outbox).where(Outbox.id == row.id, Outbox.state == "sending").values(**values)
                    .execution_options(synchronize_session=False))
    session.commit()
    return values.get("state", "pending")


def deliver_email(session, outbox_id: int, config, now: dt.datetime | None = None,
                  connection: smtplib.SMTP | None = None) -> str:
    """Deliver one email row if it is due; returns its state afterwards, or 'skipped'."""
    now = now or utcnow()
    row = claim(session, outbox_id, now)
    if row is None:
        return "skipped"
    own = connection is None
    state, connection = _send_one(session, row, config, now, connection)
    if own and connection is not None:
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            _close(connection)
    return state


def _code(exc: Exception) -> int | None:
    cause = exc.__cause__ or exc
    return getattr(cause, "smtp_code", None)


def claim_batch(session, outbox_id: int, now: dt.datetime, limit: int) -> list[Outbox]:
    """Claim `outbox_id` and up to `limit - 1` other due email rows in one statement (PostgreSQL).

    A job that holds an SMTP connection anyway drains a few more due rows over it; their own jobs
    then find nothing to do. Rows locked by another worker are skipped, never waited for.
    """
    if session.get_bind().dialect.name != "postgresql" or limit <= 1:
        row = claim(session, outbox_id, now)
        return [row] if row is not None else []
    due = ((Outbox.state == "pending") & (Outbox.next_attempt_at <= now)) | \
          ((Outbox.state == "sending") & (Outbox.lease_until < now))
    picked = (select(Outbox.id).where(Outbox.kind == "email", due)
              .order_by((Outbox.id != outbox_id), Outbox.next_attempt_at, Outbox.id)
              .limit(limit).with_for_update(skip_locked=True).scalar_subquery())
    rows = session.scalars(
        update(Outbox).where(Outbox.id.in_(picked))
        .values(state="sending", lease_until=now + dt.timedelta(seconds=LEASE_SECONDS),
                attempts=Outbox.attempts + 1)
        .returning(Outbox).execution_options(synchronize_session=False, populate_existing=True)).all()
    session.commit()
    return sorted(rows, key=lambda r: (r.id != outbox_id, r.next_attempt_at, r.id))


def _send_one(session, row: Outbox, config, now: dt.datetime, connection) -> tuple[str, object]:
    """Send a claimed row over `connection` (opened when None); returns (state, connection to reuse)."""
    started = time.monotonic()
    try:
        msg = build_message(row, config)
    except (ValueError, TypeError) as exc:  # a malformed row never gets better
        return _finish(session, row, now, False, None, f"{exc.__class__.__name__}: {exc}"[:1000], started,
                       permanent=True), connection
    try:
        if connection is None:
            connection = open_smtp(config)
        code = send_smtp(msg, row.recipient, config, connection)
    except PermanentFailure as exc:
        _reset(connection)
        return _finish(session, row, now, False, _code(exc), str(exc)[:1000], started, permanent=True), connection
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        _close(connection)
        return _finish(session, row, now, False, _code(exc), f"{exc.__class__.__name__}: {exc}"[:1000],
                       started), None
    return _finish(session, row, now, True, code, None, started), connection


def _reset(connection) -> None:
    try:
        connection.rset()
    except (smtplib.SMTPException, OSError, AttributeError):
        pass


def _close(connection) -> None:
    if connection is None:
        return
    try:
        connection.close()
    except (smtplib.SMTPException, OSError):
        pass


def deliver(outbox_id: int) -> str:
    """Deliver one outbox row (mail or webhook); idempotent: a sent row is never sent again.

    For mail, the job also drains up to NOTIFY_BATCH - 1 other due rows over the same SMTP
    connection; each send is recorded (committed) right after the server accepted it.
    """
    session = db.session
    config = current_app.config
    now = utcnow()
    rows = claim_batch(session, outbox_id, now, int(config.get("NOTIFY_BATCH", 20)))
    if not rows:
        kind = session.scalar(select(Outbox.kind).where(Outbox.id == outbox_id))
        session.rollback()
        if kind != "webhook":
            return "skipped" if kind else "missing"
        webhooks = import_optional("helpdesk.api.webhooks")
        if webhooks is None:
            logger.warning("outbox %s: no webhook sender installed", outbox_id)
            return "skipped"
        state = webhooks.deliver(session, outbox_id, allowed_hosts=config.get("WEBHOOK_ALLOWED_HOSTS") or ())
        logger.info("outbox %s (webhook): %s", outbox_id, state)
        return state
    own_state, connection = "skipped", None
    try:
        for row in rows:
            state, connection = _send_one(session, row, config, now, connection)
            if row.id == outbox_id:
                own_state = state
            logger.info("outbox %s (email): %s", row.id, state)
    finally:
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                _close(connection)
    return own_state


def sweep() -> dict:
    """Cron entry point: queue pending reminders, then re-enqueue every due row."""
    from helpdesk.notify import service

    reminders = service.queue_pending_reminders(db.session)
    queued = service.requeue_due(db.session)
    return {"reminders": reminders, "queued": queued}


def deliver_batch(limit: int = 500) -> int:
    """Deliver due email rows in this process over one SMTP connection (CLI `notify drain`)."""
    from helpdesk.notify.service import due_clause

    session = db.session
    ids = session.scalars(select(Outbox.id).where(Outbox.kind == "email", due_clause(utcnow()))
                          .order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)).all()
    session.rollback()
    sent = 0
    connection = None
    try:
        for outbox_id in ids:
            if connection is None:
                try:
                    connection = open_smtp(current_app.config)
                except (smtplib.SMTPException, OSError):
                    connection = None
            state = deliver_email(session, outbox_id, current_app.config, connection=connection)
            if state == "sent":
                sent += 1
            elif state == "pending" and connection is not None:
                try:
                    connection.close()
                finally:
                    connection = None
    finally:
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
    return sent
