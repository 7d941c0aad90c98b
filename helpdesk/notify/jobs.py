"""Outbox delivery jobs: claim a row with a lease, send it once, record the attempt, retry with backoff.

Guarantees:
- two workers never send one row at the same time (the claim is `SELECT … FOR UPDATE SKIP LOCKED`
  on PostgreSQL, a conditional UPDATE on SQLite, and it sets a lease);
- a worker killed mid-delivery loses nothing: the row stays `sending` with a lease that expires,
  and the sweeper hands it to another worker;
- once a send is recorded (`sent`), the row is never sent again (sent rows are never claimed).
  Sends are recorded in small groups (NOTIFY_RECORD_EVERY, default 10; a failure is recorded at
  once): a process that dies after the SMTP server accepted mail but before that commit can repeat
  those few mails once; they carry the same Message-ID, so mail clients show each once. Set
  NOTIFY_RECORD_EVERY=1 to record every send on its own (slower: one commit per mail).
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import smtplib
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from flask import current_app
from jinja2 import TemplateError
from sqlalchemy import insert, select, update

from helpdesk._optional import import_optional
from helpdesk.common import utcnow
from helpdesk.extensions import db
from helpdesk.notify.models import DeliveryAttempt, Outbox
from helpdesk.notify.service import render_pending
from helpdesk.text import one_line

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
    if row is not None:
        session.expunge(row)
    session.commit()
    return row


def build_message(row: Outbox, config) -> EmailMessage:
    """The MIME message of an email row: text + HTML alternative, UTF-8, RFC 2047 headers."""
    msg = EmailMessage()
    lang = (row.headers or {}).get("lang", "ja")
    msg["From"] = formataddr((config.get("MAIL_FROM_NAME") or SENDER_NAME.get(lang, SENDER_NAME["ja"]),
                              config["MAIL_FROM"]))
    # Header values are single lines whatever the row holds (a subject stored before input cleaning may
    # carry CR/LF): no header can be injected, and the mail is still sent.
    msg["To"] = one_line(row.recipient)
    msg["Subject"] = one_line(row.subject, 998)
    msg["Date"] = formatdate(localtime=False)
    for name in ("Message-ID", "In-Reply-To", "References", "Reply-To"):
        value = (row.headers or {}).get(name)
        if value:
            msg[name] = one_line(value)
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


def deliver_email(session, outbox_id: int, config, now: dt.datetime | None = None,
                  connection: smtplib.SMTP | None = None) -> str:
    """Deliver one email row if it is due; returns its state afterwards, or 'skipped'."""
    now = now or utcnow()
    row = claim(session, outbox_id, now)
    if row is None:
        return "skipped"
    own = connection is None
    result, connection = _send_one(row, config, connection)
    if own and connection is not None:
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            _close(connection)
    return record(session, [result])[row.id]


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
    for row in rows:
        session.expunge(row)  # keep the loaded values: the commit would expire them (one reload per row)
    session.commit()
    return sorted(rows, key=lambda r: (r.id != outbox_id, r.next_attempt_at, r.id))


@dataclass
class Outcome:
    row: Outbox
    ok: bool
    code: int | None
    error: str | None
    duration_ms: int
    permanent: bool = False
    #: The body was rendered for this send (queued as a template): it is stored with the result.
    rendered: bool = False


def _send_one(row: Outbox, config, connection) -> tuple[Outcome, object]:
    """Send a claimed row over `connection` (opened when None); returns (outcome, connection to reuse)."""
    started = time.monotonic()

    def outcome(ok, code=None, error=None, permanent=False):
        return Outcome(row, ok, code, error, int((time.monotonic() - started) * 1000), permanent, rendered)

    rendered = False
    try:
        rendered = render_pending(row)
        msg = build_message(row, config)
    except (ValueError, TypeError, KeyError, TemplateError) as exc:  # a malformed row never gets better
        return outcome(False, None, f"{exc.__class__.__name__}: {exc}"[:1000], True), connection
    try:
        if connection is None:
            connection = open_smtp(config)
        code = send_smtp(msg, row.recipient, config, connection)
    except PermanentFailure as exc:
        _reset(connection)
        return outcome(False, _code(exc), str(exc)[:1000], True), connection
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        _close(connection)
        return outcome(False, _code(exc), f"{exc.__class__.__name__}: {exc}"[:1000]), None
    return outcome(True, code), connection


def record(session, outcomes: list[Outcome]) -> dict[int, str]:
    """Record attempts and new states of several rows in one transaction; returns id → state."""
    if not outcomes:
        return {}
    now = utcnow()
    session.execute(insert(DeliveryAttempt), [
        {"outbox_id": o.row.id, "at": now, "ok": o.ok, "status_code": o.code, "error": o.error,
         "duration_ms": o.duration_ms} for o in outcomes])
    bodies = [{"id": o.row.id, "body_text": o.row.body_text, "body_html": o.row.body_html}
              for o in outcomes if o.rendered]
    if bodies:  # what was sent stays readable in the outbox, and a retry does not render again
        session.execute(update(Outbox), bodies)
    states: dict[int, str] = {}
    sent = [o.row.id for o in outcomes if o.ok]
    if sent:
        # Only the claim holder may finish a row (it is still 'sending' under our lease).
        session.execute(update(Outbox).where(Outbox.id.in_(sent), Outbox.state == "sending")
                        .values(state="sent", sent_at=now, last_error=None, lease_until=None)
                        .execution_options(synchronize_session=False))
        states.update({i: "sent" for i in sent})
    for o in outcomes:
        if o.ok:
            continue
        values: dict = {"lease_until": None, "last_error": o.error}
        if o.permanent or o.row.attempts >= (o.row.max_attempts or 8):
            values["state"] = "failed"
        else:
            values.update(state="pending", next_attempt_at=now + backoff(o.row.attempts))
        session.execute(update(Outbox).where(Outbox.id == o.row.id, Outbox.state == "sending").values(**values)
                        .execution_options(synchronize_session=False))
        states[o.row.id] = values["state"]
    session.commit()
    return states


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
    states = _send_rows(session, rows, config) if rows else {}
    if outbox_id in states:
        logger.info("outbox job %s: %s", outbox_id, states)
        return states[outbox_id]
    # Our row was not among the claimed mail: a webhook row (the mail drained above was a bonus),
    # or a row that is not due / already done.
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


def deliver_many(outbox_ids: list[int]) -> dict[int, str]:
    """Deliver new rows handed over in a batch (jobs.batch_after_commit); each `deliver` also drains
    other due mail over its SMTP connection, so rows already sent by then are skipped cheaply."""
    return {outbox_id: deliver(outbox_id) for outbox_id in outbox_ids}


def _send_rows(session, rows: list[Outbox], config) -> dict[int, str]:
    """Send claimed mail rows over one SMTP connection, recording results in small groups."""
    every = max(int(config.get("NOTIFY_RECORD_EVERY", 10)), 1)
    states: dict[int, str] = {}
    pending: list[Outcome] = []
    connection = None
    try:
        for row in rows:
            result, connection = _send_one(row, config, connection)
            pending.append(result)
            if len(pending) >= every or not result.ok:
                states.update(record(session, pending))
                pending = []
        states.update(record(session, pending))
        pending = []
    finally:
        if pending:  # an unexpected error: record what was already sent before giving up
            states.update(record(session, pending))
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                _close(connection)
    return states


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
