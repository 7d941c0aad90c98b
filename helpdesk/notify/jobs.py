"""The outbox dispatcher: one path for every outgoing delivery — mail, webhook, development tracker.

Every row goes through `deliver_rows`, whatever handed it over (the job queued after the commit that
wrote it, the sweeper, the retry button, `notify drain`, `insights deliver`, `api webhooks-sweep`):

1. **route** — `SENDERS[route(kind, purpose)]`: `email` → SMTP (`MailSender`), `webhook` → the
   subscriber's URL with SSRF checks (`api.webhooks.send`), `tracker` → the configured tracker URL,
   whose answer becomes the problem's external reference (`insights.tracker`);
2. **claim** — one row at a time: `UPDATE … WHERE due … RETURNING` (`FOR UPDATE SKIP LOCKED` on
   PostgreSQL) sets `sending` and a lease for that row only (LEASE_SECONDS), and counts the attempt;
   two workers never send one row at once, and a killed job strands at most the one row it was sending;
3. **sign** — webhook and tracker bodies are canonical JSON signed with HMAC-SHA256
   (`X-Helpdesk-Signature`, secret named by the row's `secret_ref`);
4. **record** — right after the receiver accepted (or refused), in its own short transaction: the
   attempt log, the new state (`sent`; `pending` with exponential backoff and jitter; `failed` after
   `max_attempts` or a permanent refusal), and the sender's follow-up (the tracker's issue key).

At-least-once window: a process that dies after the receiver accepted a row but before that record
commits (a few milliseconds) sends that one row again once its lease has expired; a mail carries the
same Message-ID then, so mail clients show it once. A sent row is never claimed again.
Rows whose job was lost (worker killed, Redis down) are due in the database: the sweeper thread of
`helpdesk worker` (`start_sweeper`, every NOTIFY_SWEEP_SECONDS, rows due for more than 15 s) and
`helpdesk notify sweep` hand them on.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import random
import smtplib
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from flask import current_app
from jinja2 import TemplateError
from sqlalchemy import insert, select, update

from helpdesk.api import webhooks
from helpdesk.common import utcnow
from helpdesk.extensions import db
from helpdesk.insights import tracker
from helpdesk.notify import service
from helpdesk.notify.models import DeliveryAttempt, Outbox
from helpdesk.notify.service import due_clause, render_pending
from helpdesk.text import one_line

logger = logging.getLogger(__name__)

#: A claim holds one row this long (NOTIFY_LEASE_SECONDS): longer than one send can take (every SMTP
#: command and the webhook POST time out after SMTP_TIMEOUT / 10 s), short enough that a killed
#: worker's row is soon retried.
LEASE_SECONDS = 60
SMTP_TIMEOUT = 10
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
SENDER_NAME = {"ja": "VDSヘルプデスク", "en": "VDS Help Desk"}


def backoff(attempts: int, rng: random.Random | None = None, cap: int = BACKOFF_CAP_SECONDS) -> dt.timedelta:
    """30 s, 1 min, 2 min … capped at `cap` (1 h for mail), ±20 % jitter so retries of many rows spread out."""
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), cap)
    return dt.timedelta(seconds=base * (rng or random).uniform(0.8, 1.2))


def route(kind: str, purpose: str | None) -> str:
    """Which sender a row goes to: its kind, except tracker rows (kind webhook, purpose tracker)."""
    return "tracker" if kind == "webhook" and purpose == tracker.PURPOSE else kind


def claim(session, outbox_id: int, now: dt.datetime, lease_seconds: int = LEASE_SECONDS) -> Outbox | None:
    """Take one row for this worker (state sending + its own lease, attempt counted); None if it is not
    due or someone else has it. Commits at once: the claim is visible to every other worker."""
    due = due_clause(now)
    if session.get_bind().dialect.name == "postgresql":
        # SKIP LOCKED: a row another worker is claiming right now is simply not ours.
        target = Outbox.id.in_(select(Outbox.id).where(Outbox.id == outbox_id, due)
                               .with_for_update(skip_locked=True).scalar_subquery())
    else:
        target = (Outbox.id == outbox_id) & due  # one conditional UPDATE (SQLite serialises writers)
    row = session.scalars(update(Outbox).where(target)
                          .values(state="sending", lease_until=now + dt.timedelta(seconds=lease_seconds),
                                  attempts=Outbox.attempts + 1)
                          .returning(Outbox)
                          .execution_options(synchronize_session=False, populate_existing=True)).first()
    if row is not None:
        session.expunge(row)  # keep the loaded values: the commit would expire them (one reload per row)
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


def _code(exc: Exception) -> int | None:
    cause = exc.__cause__ or exc
    return getattr(cause, "smtp_code", None)


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


# --- senders: one per route; `send` gets a claimed row and returns its Outcome -------------------

@dataclass
class Outcome:
    ok: bool
    code: int | None = None
    error: str | None = None
    permanent: bool = False
    duration_ms: int = 0
    #: The receiver's JSON answer (tracker: the issue key), kept on the row.
    response: dict | None = None
    #: The body was rendered for this send (queued as a template): it is stored with the result.
    rendered: bool = False


class MailSender:
    """SMTP; one connection reused for the rows of a job, reopened after an error."""

    backoff_cap = BACKOFF_CAP_SECONDS

    def __init__(self, config):
        self.config, self.connection = config, None

    def send(self, session, row: Outbox) -> Outcome:
        rendered = False
        try:
            rendered = render_pending(row)
            msg = build_message(row, self.config)
        except (ValueError, TypeError, KeyError, TemplateError) as exc:  # a malformed row never gets better
            return Outcome(False, None, f"{exc.__class__.__name__}: {exc}"[:1000], True, rendered=rendered)
        try:
            if self.connection is None:
                self.connection = open_smtp(self.config)
            code = send_smtp(msg, row.recipient, self.config, self.connection)
        except PermanentFailure as exc:
            _reset(self.connection)
            return Outcome(False, _code(exc), str(exc)[:1000], True, rendered=rendered)
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            _close(self.connection)
            self.connection = None
            return Outcome(False, _code(exc), f"{exc.__class__.__name__}: {exc}"[:1000], rendered=rendered)
        return Outcome(True, code, rendered=rendered)

    def after_sent(self, session, row: Outbox) -> None:
        pass

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                _close(self.connection)
            self.connection = None


class WebhookSender:
    """A subscriber's URL: every resolved address re-checked at delivery time (no SSRF)."""

    backoff_cap = webhooks.BACKOFF_CAP_SECONDS

    def __init__(self, config):
        self.allowed_hosts = config.get("WEBHOOK_ALLOWED_HOSTS") or ()

    def send(self, session, row: Outbox) -> Outcome:
        body, headers = signed_request(session, row, "helpdesk-webhooks/1")
        status, error, permanent = webhooks.send(row.recipient, body, headers, allowed_hosts=self.allowed_hosts)
        return Outcome(error is None, status, error, permanent, response={"status": status} if status else None)

    def after_sent(self, session, row: Outbox) -> None:
        pass

    def close(self) -> None:
        pass


class TrackerSender:
    """The development tracker (configured URL); its answer names the issue, stored on the problem."""

    backoff_cap = tracker.BACKOFF_CAP_SECONDS

    def __init__(self, config):
        pass

    def send(self, session, row: Outbox) -> Outcome:
        body, headers = signed_request(session, row, "vds-helpdesk/1", event=tracker.EVENT)
        status, data, error = tracker.post(row.recipient, body, headers)
        return Outcome(error is None, status, error, response=data)

    def after_sent(self, session, row: Outbox) -> None:
        tracker.store_ref(session, row)

    def close(self) -> None:
        pass


#: Row route → sender.
SENDERS = {"email": MailSender, "webhook": WebhookSender, "tracker": TrackerSender}


def signed_request(session, row: Outbox, user_agent: str, event: str | None = None) -> tuple[bytes, dict]:
    """The JSON body of a webhook/tracker row and its headers, signed with the row's secret."""
    body = json.dumps(row.payload or {}, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": user_agent,
               "X-Helpdesk-Event": str(event or (row.payload or {}).get("event", row.purpose)),
               "X-Helpdesk-Delivery": str(row.id)}
    secret = webhooks.resolve_secret(session, (row.headers or {}).get("secret_ref"))
    if secret:
        headers[webhooks.SIGNATURE_HEADER] = webhooks.sign(secret, body)
    return body, headers


# --- the dispatcher ---------------------------------------------------------------------------

def record(session, row: Outbox, outcome: Outcome, sender, now: dt.datetime | None = None) -> str:
    """Record one send in its own short transaction; returns the row's new state.

    Only the claim holder may finish a row (it is still `sending`); a row whose lease expired and
    was taken over meanwhile is left to the new holder.
    """
    now = now or utcnow()
    session.execute(insert(DeliveryAttempt), [{"outbox_id": row.id, "at": now, "ok": outcome.ok,
                                               "status_code": outcome.code, "error": outcome.error,
                                               "duration_ms": outcome.duration_ms}])
    values: dict = {"lease_until": None}
    if outcome.rendered:  # what was sent stays readable in the outbox, and a retry does not render again
        values.update(body_text=row.body_text, body_html=row.body_html)
    if outcome.ok:
        values.update(state="sent", sent_at=now, last_error=None)
        if outcome.response is not None:
            values["response"] = outcome.response
    elif outcome.permanent or row.attempts >= (row.max_attempts or 8):
        values.update(state="failed", last_error=outcome.error)
    else:
        values.update(state="pending", last_error=outcome.error,
                      next_attempt_at=now + backoff(row.attempts, cap=sender.backoff_cap))
    done = session.execute(update(Outbox).where(Outbox.id == row.id, Outbox.state == "sending").values(**values)
                           .execution_options(synchronize_session=False)).rowcount
    if done and outcome.ok:
        row.response, row.state = outcome.response, "sent"
        sender.after_sent(session, row)
    session.commit()
    return values["state"]


def deliver_rows(session, outbox_ids, config, now: dt.datetime | None = None) -> dict[int, str]:
    """Claim, send and record each row in turn (one sender per route, reused for the rows of this call).

    Returns id → state afterwards, or 'skipped' (not due, already sent, or another worker has it).
    """
    senders: dict[str, object] = {}
    states: dict[int, str] = {}
    lease = int(config.get("NOTIFY_LEASE_SECONDS") or LEASE_SECONDS)
    try:
        for outbox_id in outbox_ids:
            row = claim(session, outbox_id, now or utcnow(), lease)
            if row is None:
                states[outbox_id] = "skipped"
                continue
            name = route(row.kind, row.purpose)
            sender = senders.get(name)
            if sender is None:
                sender = senders[name] = SENDERS[name](config)
            started = time.monotonic()
            outcome = sender.send(session, row)
            outcome.duration_ms = int((time.monotonic() - started) * 1000)
            states[outbox_id] = record(session, row, outcome, sender)
    finally:
        session.rollback()
        for sender in senders.values():
            sender.close()
    return states


def deliver(outbox_id: int) -> str:
    """Job: deliver one outbox row of any kind; idempotent (a sent row is never sent again)."""
    state = deliver_rows(db.session, [outbox_id], current_app.config)[outbox_id]
    logger.info("outbox %s: %s", outbox_id, state)
    return state


def deliver_many(outbox_ids: list[int]) -> dict[int, str]:
    """Job: deliver rows handed over in a batch (jobs.batch_after_commit, the sweeper, the retry button)."""
    return deliver_rows(db.session, outbox_ids, current_app.config)


def deliver_due(route: str | None = None, limit: int = 500) -> int:
    """Deliver due rows right here (CLI: `notify drain`, `insights deliver`, `api webhooks-sweep`);
    `route` limits it to one sender's rows. Returns how many were sent."""
    session = db.session
    stmt = select(Outbox.id, Outbox.kind, Outbox.purpose).where(due_clause(utcnow()))
    if route == "tracker":
        stmt = stmt.where(Outbox.kind == "webhook", Outbox.purpose == tracker.PURPOSE)
    elif route == "webhook":
        stmt = stmt.where(Outbox.kind == "webhook", Outbox.purpose != tracker.PURPOSE)
    elif route is not None:
        stmt = stmt.where(Outbox.kind == route)
    ids = [r.id for r in session.execute(stmt.order_by(Outbox.next_attempt_at, Outbox.id).limit(limit))]
    session.rollback()
    states = deliver_rows(session, ids, current_app.config)
    return sum(1 for state in states.values() if state == "sent")


def sweep() -> dict:
    """Cron entry point: queue pending reminders, then re-enqueue every due row."""
    reminders = service.queue_pending_reminders(db.session)
    queued = service.requeue_due(db.session)
    return {"reminders": reminders, "queued": queued}


# --- the worker's sweeper thread ----------------------------------------------------------------

#: A row due this long has been waiting for a worker longer than any healthy hand-over takes.
STRANDED_AFTER_SECONDS = 15


def sweep_stranded(grace_seconds: float = STRANDED_AFTER_SECONDS) -> int:
    """One sweeper pass: re-enqueue rows due for more than `grace_seconds` (their job was lost or killed).
    A row that is merely queued behind a backlog may be handed over twice; its claim makes that harmless."""
    return service.requeue_due(db.session, now=utcnow() - dt.timedelta(seconds=grace_seconds))


def start_sweeper(app, every: float | None = None) -> threading.Event:
    """Run `sweep_stranded` every NOTIFY_SWEEP_SECONDS (default 10) in a daemon thread of the worker
    process, so a killed job's rows are delivered within seconds; set the returned event to stop it."""
    every = float(every if every is not None else app.config.get("NOTIFY_SWEEP_SECONDS", 10))
    stop = threading.Event()

    def loop():
        while not stop.wait(every):
            with app.app_context():
                try:
                    queued = sweep_stranded()
                    if queued:
                        logger.info("notify sweeper: %d stranded rows handed on", queued)
                except Exception as exc:  # database or Redis down: try again next time
                    logger.warning("notify sweeper: %s", exc)
                finally:
                    db.session.remove()

    threading.Thread(target=loop, name="notify-sweeper", daemon=True).start()
    return stop
