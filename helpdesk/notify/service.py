"""The outbox: mail and webhooks are rows written in the caller's transaction; jobs deliver them.

Queueing (`queue_email`, `queue_webhook`) never sends anything: the delivery job runs after the
commit (with the transaction's other jobs, one Redis round trip, `jobs.enqueue_batch`), and `requeue_due()` (run by `helpdesk notify sweep` from cron
and at worker start) picks up rows whose job was lost (Redis down, worker killed).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets

from flask import current_app, has_app_context, render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, update

from helpdesk import audit, jobs
from helpdesk.audit import Actor
from helpdesk.common import TOKYO, utcnow
from helpdesk.notify.models import DeliveryAttempt, Outbox

logger = logging.getLogger(__name__)

#: Subject lines per mail kind and language; the ticket reference is put in front as [HD-000123].
SUBJECTS = {
    "ticket_received": {"ja": "お問い合わせを受け付けました", "en": "We received your request"},
    "public_reply": {"ja": "ヘルプデスクからの回答", "en": "Answer from the help desk"},
    "pending_reminder": {"ja": "ご返信のお願い", "en": "Waiting for your answer"},
    "resolved": {"ja": "お問い合わせを解決済みにしました", "en": "Your request has been resolved"},
    "assigned": {"ja": "チケットの担当になりました", "en": "Ticket assigned to you"},
    "requester_replied": {"ja": "依頼者から返信がありました", "en": "The requester replied"},
    "sla_at_risk": {"ja": "SLA期限間近のチケット", "en": "Tickets close to their SLA due time"},
    "sla_breached": {"ja": "SLA超過のチケット", "en": "Tickets past their SLA due time"},
}
ACTION_LABELS = {"ja": "ヘルプデスクで開く", "en": "Open in the help desk"}
PLACEHOLDER_DOMAINS = ("contacts.invalid",)
#: How long a ticket waits pending on the requester before the reminder mail.
PENDING_REMINDER_HOURS = 72
SLA_DIGEST_LIMIT = 50


# --- queueing ------------------------------------------------------------------------------

def _queue(session, row: Outbox) -> Outbox | None:
    """Insert `row` unless a row with its dedupe key exists; None when it was already queued.

    One statement (INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, on PostgreSQL and
    SQLite alike): a concurrent transaction queueing the same key waits on the unique index and then
    inserts nothing, and the caller's own change is never rolled back. The returned object is not
    attached to the session (it carries the values and the new id).
    """
    values = {key: getattr(row, key) for key in _OUTBOX_COLUMNS}
    values["created_at"] = values["created_at"] or utcnow()
    values["max_attempts"] = values["max_attempts"] or 8
    # A Core statement on the session's connection: no ORM flush of the caller's pending rows here
    # (they are flushed once, at the commit); the rows this one refers to (a ticket) are already inserted.
    connection = session.connection()
    new_id = connection.execute(_insert_statement(connection.dialect.name), values).scalar()
    if new_id is None:
        return None
    row.id = new_id
    # Delivered by a job once committed; it goes out with the transaction's other jobs (one round trip).
    jobs.batch_after_commit(session, _deliver_many(), new_id, queue="notify", lanes=DELIVERY_LANES)
    return row


#: Column names (the table, not the mapper: reading the mapper at import would configure all mappers).
_OUTBOX_COLUMNS = [c.key for c in Outbox.__table__.columns if c.key != "id"]
_INSERTS: dict[str, object] = {}


def _insert_statement(dialect: str):
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, built once per dialect (NULL keys never conflict)."""
    stmt = _INSERTS.get(dialect)
    if stmt is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        table = Outbox.__table__
        stmt = _INSERTS[dialect] = (dialect_insert(table).on_conflict_do_nothing(index_elements=[table.c.dedupe_key])
                                    .returning(table.c.id))
    return stmt


# --- enqueueing after the commit -------------------------------------------------------------

def _deliver_many():
    """The delivery job (helpdesk.notify.jobs imports this module, so it is looked up when queued)."""
    from helpdesk.notify.jobs import deliver_many

    return deliver_many
#: New rows are spread over this many lists, each drained by its own job: up to 4 workers send at once.
DELIVERY_LANES = 4

def enqueue_deliveries(ids: list[int]) -> bool:
    """Hand rows to the delivery workers (the sweeper's path): the same lanes as new rows, one Redis
    round trip, a drain job per lane queued even if one seems pending (it may be the lost one)."""
    if not ids:
        return True
    return jobs.enqueue_batch([], [(_deliver_many(), i, "notify", i % DELIVERY_LANES) for i in ids],
                              force_drain=True)


def queue_email(session, *, to: str, subject: str, body_text: str | None, body_html: str | None = None,
                purpose: str, ticket_id: int | None = None, dedupe_key: str | None = None,
                headers: dict | None = None, render: dict | None = None) -> Outbox | None:
    """Add a mail to the outbox (same transaction as the caller's change); None if already queued.
    `render` (from `queue_templated_mail`) names the template the delivery job renders the body from."""
    headers = dict(headers or {})
    headers.setdefault("Message-ID", new_message_id(ticket_id))
    return _queue(session, Outbox(kind="email", recipient=to, subject=subject, body_text=body_text,
                                  body_html=body_html, purpose=purpose, ticket_id=ticket_id,
                                  payload={"render": render} if render else None,
                                  dedupe_key=dedupe_key, headers=headers, state="pending", attempts=0,
                                  next_attempt_at=utcnow()))


def queue_webhook(session, *, url: str, payload: dict, purpose: str, secret_ref: str | None = None,
                  object_ref: str | None = None, ticket_id: int | None = None,
                  dedupe_key: str | None = None) -> Outbox | None:
    """Add a webhook delivery to the outbox; `secret_ref` names where the signing secret lives."""
    return _queue(session, Outbox(kind="webhook", recipient=url, payload=payload, purpose=purpose,
                                  headers={"secret_ref": secret_ref} if secret_ref else None,
                                  object_ref=object_ref, ticket_id=ticket_id, dedupe_key=dedupe_key,
                                  state="pending", attempts=0, next_attempt_at=utcnow()))


# --- message ids (reply threading) -----------------------------------------------------------

def mail_domain() -> str:
    sender = current_app.config.get("MAIL_FROM", "helpdesk@example.jp") if has_app_context() else ""
    return sender.rpartition("@")[2] or "helpdesk.invalid"


def thread_root_id(ticket_id: int) -> str:
    """The Message-ID every mail about a ticket refers to, so mail clients thread them."""
    return f"<hd-{ticket_id:06d}@{mail_domain()}>"


def new_message_id(ticket_id: int | None) -> str:
    token = secrets.token_hex(6)
    prefix = f"hd-{ticket_id:06d}." if ticket_id else "hd."
    return f"<{prefix}{token}@{mail_domain()}>"


_OWN_ID = re.compile(r"<hd-(\d{6,12})[.@]", re.IGNORECASE)


def ticket_id_from_message_ids(message_ids) -> int | None:
    """Our own outgoing Message-IDs carry the ticket id: <hd-000123.xxxx@domain>."""
    domain = mail_domain().lower()
    for mid in message_ids or ():
        match = _OWN_ID.match(mid or "")
        if match and mid.lower().rstrip(">").endswith("@" + domain):
            return int(match.group(1))
    return None


# --- rendering -----------------------------------------------------------------------------

def _url(path: str) -> str:
    base = (current_app.config.get("BASE_URL") or "").rstrip("/") if has_app_context() else ""
    return base + path


def _lang(lang: str | None) -> str:
    return lang if lang in ("ja", "en") else "ja"


def mail_subject(kind: str, lang: str, ref: str | None, suffix: str | None = None) -> str:
    """"[HD-000123] We received your request: <suffix>" in `lang`, at most 480 characters."""
    lang = _lang(lang)
    return ((f"[{ref}] " if ref else "") + SUBJECTS[kind][lang] + (f": {suffix}" if suffix else ""))[:480]


def render_body(template: str, lang: str, ref: str | None, subject: str, context: dict) -> tuple[str, str]:
    """(text, html) of a mail in `lang`; the HTML repeats the text, escaped, with one action button."""
    lang = _lang(lang)
    with force_locale(lang):
        text = render_template(f"notify/mail/{template}.{lang}.txt", ref=ref, **context).strip() + "\n"
        paragraphs = [[line for line in block.split("\n")] for block in re.split(r"\n\s*\n", text.strip())]
        html = render_template("notify/mail/layout.html", lang=lang, subject=subject, paragraphs=paragraphs,
                               action_url=context.get("action_url"), action_label=ACTION_LABELS[lang])
    return text, html


def render_pending(row: Outbox) -> bool:
    """Fill in the body of a mail queued with `queue_templated_mail` (the delivery job calls this just
    before sending); False when the row needed nothing. Raises on a broken template or context."""
    spec = (row.payload or {}).get("render") if row.kind == "email" and row.body_text is None else None
    if not spec:
        return False
    row.body_text, row.body_html = render_body(spec["template"], spec["lang"], spec.get("ref"), row.subject or "",
                                               spec["context"])
    return True


def queue_templated_mail(session, *, to: str, kind: str, template: str, lang: str, ref: str | None,
                         context: dict, purpose: str, ticket_id: int | None = None, dedupe_key: str | None = None,
                         headers: dict | None = None) -> Outbox | None:
    """Queue a mail rendered from `notify/mail/<template>.<lang>.txt` when it is delivered, not now.

    The row (recipient, subject, the template's name and its JSON context) is written in the caller's
    transaction as always — nothing is lost if the process dies — but the Jinja rendering, the costly
    part, happens in the delivery job, off the request that caused the mail.
    """
    lang = _lang(lang)
    subject = mail_subject(kind, lang, ref, context.get("subject_suffix"))
    return queue_email(session, to=to, subject=subject, body_text=None, purpose=purpose, ticket_id=ticket_id,
                       dedupe_key=dedupe_key, headers=headers,
                       render={"template": template, "lang": lang, "ref": ref, "context": context})


def _deliverable(user) -> bool:
    email = (getattr(user, "email", None) or "").lower()
    return bool(email) and "@" in email and not email.endswith(PLACEHOLDER_DOMAINS) and user.is_active


def _ticket_headers(ticket, lang: str = "ja") -> dict:
    root = thread_root_id(ticket.id)
    return {"Message-ID": new_message_id(ticket.id), "In-Reply-To": root, "References": root, "lang": lang}


def queue_ticket_mail(session, ticket, user, kind: str, template: str | None = None, *, dedupe_key: str,
                      purpose: str | None = None, action_path: str | None = None, **context) -> Outbox | None:
    """Queue a ticket mail in the user's language (no-op for undeliverable users); rendered on delivery."""
    if user is None or not _deliverable(user):
        return None
    url = _url(action_path or f"/tickets/{ticket.ref}")
    context = dict(name=user.name, subject=ticket.subject, url=url, action_url=url,
                   subject_suffix=(ticket.subject or "")[:120], **context)
    return queue_templated_mail(session, to=user.email, kind=kind, template=template or kind, lang=user.locale,
                                ref=ticket.ref, context=context, purpose=purpose or f"ticket.{kind}",
                                ticket_id=ticket.id, dedupe_key=dedupe_key,
                                headers=_ticket_headers(ticket, _lang(user.locale)))


def _tokyo(value: dt.datetime | None) -> str:
    return value.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") if value else "—"


# --- ticket notifications (called by tickets.effects, inside the ticket's transaction) -------

def enabled() -> bool:
    """NOTIFY_ENABLED (default on): off, ticket changes queue no mail (imports, load tests)."""
    return not has_app_context() or current_app.config.get("NOTIFY_ENABLED", True)


def on_ticket_created(session, ticket, actor: Actor | None = None) -> None:
    """Requester: 'received' with the reference; agent: 'assigned' when created with an assignee."""
    queue_ticket_mail(session, ticket, ticket.requester, "ticket_received", dedupe_key=f"t{ticket.id}:received",
                      action_path=f"/portal/tickets/{ticket.ref}")
    if ticket.assignee_id and (actor is None or actor.user_id != ticket.assignee_id):
        _assigned(session, ticket, actor, key=f"t{ticket.id}:assigned:{ticket.assignee_id}:created")


def _assigned(session, ticket, actor: Actor | None, key: str) -> None:
    from helpdesk.accounts.models import User

    assignee = ticket.assignee or session.get(User, ticket.assignee_id)
    queue_ticket_mail(session, ticket, assignee, "assigned", dedupe_key=key,
                      actor=actor.label if actor else "system", priority=ticket.priority,
                      due=_tokyo(ticket.resolution_due_at) if ticket.resolution_due_at else None)


def on_ticket_changed(session, ticket, actor: Actor | None, event) -> None:
    """Agent: 'assigned'; requester: 'resolved' with the CSAT link."""
    if event is None:
        return
    if event.kind == "assignee" and ticket.assignee_id and (actor is None or actor.user_id != ticket.assignee_id):
        _assigned(session, ticket, actor, key=f"e{event.id}:assigned")
    elif event.kind == "status" and event.after == "resolved" and (event.detail or {}).get("reason") != "merged":
        queue_ticket_mail(session, ticket, ticket.requester, "resolved", dedupe_key=f"e{event.id}:resolved",
                          action_path=f"/portal/tickets/{ticket.ref}#csat",
                          csat_url=_url(f"/portal/tickets/{ticket.ref}#csat"))


def on_comment_added(session, ticket, actor: Actor | None, comment) -> None:
    """Public staff reply → requester; requester reply → assignee. Internal notes never mail the requester."""
    if comment is None or not comment.is_public:
        return
    author = comment.author if comment.author_id else None
    if author is None and comment.author_id:
        from helpdesk.accounts.models import User

        author = session.get(User, comment.author_id)
    if author is not None and author.is_staff:
        row = queue_ticket_mail(session, ticket, ticket.requester, "public_reply",
                                dedupe_key=f"c{comment.id}:reply", action_path=f"/portal/tickets/{ticket.ref}",
                                body=comment.body)
        if row is not None and not comment.message_id:
            # Replies to this mail quote its Message-ID: keep it on the comment for threading.
            comment.message_id = row.headers["Message-ID"][:255]
    elif ticket.assignee_id and ticket.assignee_id != comment.author_id:
        from helpdesk.accounts.models import User

        assignee = ticket.assignee or session.get(User, ticket.assignee_id)
        queue_ticket_mail(session, ticket, assignee, "requester_replied", dedupe_key=f"c{comment.id}:to_assignee",
                          body=comment.body[:4000])


def queue_pending_reminders(session, now: dt.datetime | None = None, hours: int | None = None) -> int:
    """Remind requesters of tickets pending on them for `hours`; once per pause (dedupe key)."""
    from helpdesk.tickets.models import Ticket

    now = now or utcnow()
    hours = hours if hours is not None else (current_app.config.get("PENDING_REMINDER_HOURS", PENDING_REMINDER_HOURS)
                                             if has_app_context() else PENDING_REMINDER_HOURS)
    cutoff = now - dt.timedelta(hours=hours)
    count = 0
    tickets = session.scalars(select(Ticket).where(Ticket.status == "pending", Ticket.sla_paused_at.is_not(None),
                                                   Ticket.sla_paused_at <= cutoff).limit(5000)).all()
    for ticket in tickets:
        key = f"t{ticket.id}:pending_reminder:{int(ticket.sla_paused_at.timestamp())}"
        if queue_ticket_mail(session, ticket, ticket.requester, "pending_reminder", dedupe_key=key,
                             action_path=f"/portal/tickets/{ticket.ref}") is not None:
            count += 1
    session.commit()
    return count


def supervisors(session) -> list:
    from helpdesk.accounts.models import User

    users = session.scalars(select(User).where(User.roles.like("%supervisor%"), User.state != "disabled")).all()
    return [u for u in users if u.has_role("supervisor")]


def notify_sla(session, kind: str, ticket_ids: list[int], now: dt.datetime | None = None) -> int:
    """One digest mail per assignee and per supervisor for tickets that just became at risk / breached.

    The dedupe key names the recipient and the exact set of tickets, so re-running a sweep over
    the same transition queues nothing new.
    """
    from helpdesk.accounts.models import User
    from helpdesk.tickets.models import Ticket

    if not ticket_ids:
        return 0
    rows = []
    for i in range(0, len(ticket_ids), 5000):
        rows += session.execute(
            select(Ticket.id, Ticket.subject, Ticket.priority, Ticket.assignee_id, Ticket.first_response_at,
                   Ticket.first_response_due_at, Ticket.resolution_due_at)
            .where(Ticket.id.in_(ticket_ids[i:i + 5000])).order_by(Ticket.id)).all()
    by_recipient: dict[int, list] = {}
    for row in rows:
        if row.assignee_id:
            by_recipient.setdefault(row.assignee_id, []).append(row)
    sup = supervisors(session)
    for user in sup:
        by_recipient.setdefault(user.id, [])
        by_recipient[user.id] = list({r.id: r for r in by_recipient[user.id] + rows}.values())
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(list(by_recipient))))} \
        if by_recipient else {}
    sent = 0
    for user_id, items in by_recipient.items():
        user = users.get(user_id)
        if user is None or not items or not _deliverable(user):
            continue
        items.sort(key=lambda r: r.id)
        digest = hashlib.sha256(",".join(str(r.id) for r in items).encode()).hexdigest()[:24]
        shown = items[:SLA_DIGEST_LIMIT]
        listed = [{"ref": f"HD-{r.id:06d}", "priority": r.priority, "subject": r.subject[:80],
                   "due": _tokyo(r.first_response_due_at if r.first_response_at is None and r.first_response_due_at
                                 and (r.resolution_due_at is None or r.first_response_due_at < r.resolution_due_at)
                                 else r.resolution_due_at),
                   "url": _url(f"/tickets/HD-{r.id:06d}")} for r in shown]
        ref = listed[0]["ref"] if len(items) == 1 else None
        queue_path = "/agent/queue?sla=" + ("breached" if kind == "breached" else "at_risk")
        context = dict(name=user.name, sla_kind=kind, count=len(items), tickets=listed, more=len(items) - len(shown),
                       queue_url=_url(queue_path), action_url=_url(queue_path),
                       subject_suffix=items[0].subject[:80] if ref else f"{len(items)}")
        lang = _lang(user.locale)
        headers = _ticket_headers(session.get(Ticket, items[0].id), lang) if ref else {"lang": lang}
        if queue_templated_mail(session, to=user.email, kind=f"sla_{kind}", template="sla", lang=lang, ref=ref,
                                context=context, purpose=f"sla.{kind}", ticket_id=items[0].id if ref else None,
                                dedupe_key=f"sla:{kind}:{user_id}:{digest}", headers=headers) is not None:
            sent += 1
    return sent


# --- the sweeper and the failed-deliveries page ----------------------------------------------

def due_clause(now: dt.datetime):
    """Rows a worker may take now: pending and due, or claimed by a worker whose lease expired."""
    return or_(and_(Outbox.state == "pending", Outbox.next_attempt_at <= now),
               and_(Outbox.state == "sending", Outbox.lease_until < now))


def requeue_due(session, now: dt.datetime | None = None, limit: int = 10_000) -> int:
    """Enqueue a delivery job for every row that is due (after Redis or a worker was down)."""
    now = now or utcnow()
    ids = session.scalars(select(Outbox.id).where(due_clause(now)).order_by(Outbox.next_attempt_at, Outbox.id)
                          .limit(limit)).all()
    session.rollback()  # end the read transaction before the jobs (in-process ones) open theirs
    queued = 0
    for i in range(0, len(ids), 500):
        chunk = list(ids[i:i + 500])
        if not enqueue_deliveries(chunk):
            logger.warning("notify sweep: Redis unreachable, %d rows left for the next run", len(ids) - queued)
            break
        queued += len(chunk)
    return queued


def failed_deliveries(session, page: int = 1, per_page: int = 50) -> tuple[list[Outbox], int]:
    total = session.scalar(select(func.count()).select_from(Outbox).where(Outbox.state == "failed")) or 0
    rows = session.scalars(select(Outbox).where(Outbox.state == "failed").order_by(Outbox.id.desc())
                           .offset((max(page, 1) - 1) * per_page).limit(per_page)).all()
    return list(rows), int(total)


def attempts_for(session, outbox_ids: list[int]) -> dict[int, list[DeliveryAttempt]]:
    out: dict[int, list[DeliveryAttempt]] = {i: [] for i in outbox_ids}
    if outbox_ids:
        for attempt in session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id.in_(outbox_ids))
                                       .order_by(DeliveryAttempt.id)):
            out[attempt.outbox_id].append(attempt)
    return out


class NotifyError(ValueError):
    """A refused outbox operation; the message is shown to the user."""


def retry(session, outbox_id: int, actor: Actor) -> Outbox:
    """Put a failed row back in the queue with a fresh set of attempts."""
    row = session.get(Outbox, outbox_id)
    if row is None:
        raise NotifyError(_l("配信が見つかりません。"))
    if row.state != "failed":
        raise NotifyError(_l("失敗した配信だけ再送できます。"))
    result = session.execute(update(Outbox).where(Outbox.id == outbox_id, Outbox.state == "failed")
                             .values(state="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise NotifyError(_l("この配信は既に再送されています。"))
    audit.record(session, actor, "notify.retry", "outbox", outbox_id,
                 {"recipient": row.recipient, "purpose": row.purpose, "last_error": row.last_error})
    jobs.batch_after_commit(session, _deliver_many(), outbox_id, queue="notify", lanes=DELIVERY_LANES)
    session.commit()
    session.refresh(row)
    return row


def outbox_stats(session) -> dict[str, int]:
    return {state: int(n) for state, n in session.execute(select(Outbox.state, func.count()).group_by(Outbox.state))}
