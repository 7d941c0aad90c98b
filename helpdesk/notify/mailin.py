"""Inbound e-mail channel: raw mail → a new ticket or a reply on an existing one.

`ingest_raw_mail(session, raw)` is the one entry point (SMTP receiver, `--file`, tests). Auto
replies and bounces create nothing and send nothing, so two desks can never loop mail at each other.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from sqlalchemy import select

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.notify.inbound import DEFAULT_MAX_BYTES, InboundMail, MailTooLarge, parse_message
from helpdesk.accounts.service import create_user, find_user_by_email
from helpdesk.extensions import db
from helpdesk.notify.service import ticket_id_from_message_ids
from helpdesk.tickets import service as tickets
from helpdesk.tickets.attachments import AttachmentError, check_file, store
from helpdesk.tickets.models import Comment, Ticket, parse_ref

logger = logging.getLogger(__name__)

NO_SUBJECT = "（件名なし）"


@dataclass
class IngestResult:
    #: created | appended | ignored | rejected | deferred (over the sender's limit: answer 451, they retry)
    action: str
    ticket_id: int | None = None
    comment_id: int | None = None
    reason: str | None = None
    refused_files: list[str] = field(default_factory=list)
    #: deferred: seconds until the sender's window ends
    retry_after: int | None = None

    @property
    def ref(self) -> str | None:
        return f"HD-{self.ticket_id:06d}" if self.ticket_id else None

    def as_dict(self) -> dict:
        return {"action": self.action, "ticket": self.ref, "comment_id": self.comment_id, "reason": self.reason,
                "refused_files": self.refused_files}


def max_mail_bytes() -> int:
    if has_app_context():
        return int(current_app.config.get("MAIL_IN_MAX_BYTES") or DEFAULT_MAX_BYTES)
    return DEFAULT_MAX_BYTES


def _external_id(mail: InboundMail) -> str | None:
    if not mail.message_id:
        return None
    return "mail:" + hashlib.sha1(mail.message_id.encode("utf-8", "replace")).hexdigest()


def _find_or_create_sender(session, mail: InboundMail):
    user = find_user_by_email(session, mail.from_addr)
    if user is not None:
        return user, False
    name = mail.from_name or mail.from_addr.split("@")[0]
    user = create_user(session, email=mail.from_addr, name=name[:200], organisation_id=None, roles="requester",
                       actor=Actor.system("mail-in"), must_change_password=True, commit=False)
    # An unknown sender becomes a contact an agent must check (organisation, identity).
    user.needs_review = True
    audit.record(session, Actor.system("mail-in"), "contact.created_from_mail", "user", user.id,
                 {"email": mail.from_addr, "message_id": mail.message_id})
    return user, True


def _thread_target(session, mail: InboundMail):
    """The ticket this mail answers: [HD-…] in the subject, our Message-IDs, or a stored comment id."""
    ticket_id = parse_ref(mail.ticket_ref) if mail.ticket_ref else None
    if ticket_id is None:
        ticket_id = ticket_id_from_message_ids(mail.thread_ids)
    if ticket_id is None and mail.thread_ids:
        ticket_id = session.scalar(select(Comment.ticket_id).where(Comment.message_id.in_(mail.thread_ids))
                                   .order_by(Comment.id.desc()).limit(1))
    ticket = session.get(Ticket, ticket_id) if ticket_id else None
    # Follow merges to the surviving ticket.
    for _ in range(5):
        if ticket is None or not ticket.merged_into_id:
            break
        ticket = session.get(Ticket, ticket.merged_into_id)
    return ticket


def _would_create(session, mail: InboundMail) -> bool:
    """Whether this mail would open a new ticket (not a reply the sender may add to an open ticket)."""
    target = _thread_target(session, mail)
    if target is None or target.status == "closed":
        return True
    user = find_user_by_email(session, mail.from_addr)
    return user is None or not tickets.can_see(user, target)


def _check_files(mail: InboundMail):
    accepted, refused = [], []
    for att in mail.attachments:
        try:
            accepted.append(check_file(att.filename, att.content))
        except AttachmentError as exc:
            refused.append(str(exc))
    return accepted, refused


def ingest_raw_mail(session, raw: bytes, *, max_bytes: int | None = None) -> IngestResult:
    """Turn one raw mail into a ticket or a reply; commits. Never raises for a bad mail."""
    try:
        mail = parse_message(raw, max_bytes=max_bytes or max_mail_bytes())
    except MailTooLarge as exc:
        logger.info("mail-in: rejected, %s", exc)
        return IngestResult("rejected", reason="too_large")
    if mail.is_auto:
        logger.info("mail-in: ignored automatic mail from %s (%s)", mail.from_addr, mail.auto_reason)
        return IngestResult("ignored", reason=f"auto:{mail.auto_reason}")
    if not mail.from_addr or "@" not in mail.from_addr:
        return IngestResult("ignored", reason="no_sender")
    own = (current_app.config.get("MAIL_FROM") or "").lower() if has_app_context() else ""
    if own and mail.from_addr == own:
        return IngestResult("ignored", reason="own_address")
    external_id = _external_id(mail)
    if mail.message_id:
        seen = session.scalar(select(Comment.ticket_id).where(Comment.message_id == mail.message_id).limit(1))
        if seen is None and external_id:
            seen = session.scalar(select(Ticket.id).where(Ticket.external_id == external_id))
        if seen is not None:
            return IngestResult("ignored", ticket_id=seen, reason="duplicate")

    if _would_create(session, mail):
        from helpdesk.tickets import creation_limit

        # Per sender address, before anything is written (not even the sender's contact).
        refusal = creation_limit.enforce(session, "mail_sender", mail.from_addr, Actor.system("mail-in"), "email",
                                         audit_subject={"sender": mail.from_addr})
        if refusal is not None:
            return IngestResult("deferred", reason="rate_limited", retry_after=refusal.retry_after)
    user, _created = _find_or_create_sender(session, mail)
    actor = Actor(user.id, user.email)
    accepted, refused = _check_files(mail)
    body = mail.text or mail.full_text or ""
    if refused:
        body += "\n\n［添付できなかったファイル］\n" + "\n".join(f"・{r}" for r in refused)
    target = _thread_target(session, mail)
    try:
        if target is not None and tickets.can_see(user, target) and target.status != "closed":
            comment = tickets.add_comment(session, target.id, body or "（本文なし）", actor, public=True, via="email",
                                          message_id=mail.message_id, commit=False)
            for checked in accepted:
                store(session, target, checked, actor, comment_id=comment.id)
            session.commit()
            return IngestResult("appended", ticket_id=target.id, comment_id=comment.id, refused_files=refused)
        if target is not None:
            logger.info("mail-in: %s may not reply on %s (or it is closed): new ticket", mail.from_addr, target.ref)
        ticket = tickets.create_ticket(
            session, actor=actor, subject=mail.subject or NO_SUBJECT, body=body, channel="email",
            requester_id=user.id, external_id=external_id,
            context={"message_id": mail.message_id, "from": mail.from_addr,
                     "previous": target.ref if target is not None else None},
            commit=False)
        if target is not None:
            tickets.link_tickets(session, ticket.id, target.id, actor, commit=False)
        for checked in accepted:
            store(session, ticket, checked, actor)
        session.commit()
        return IngestResult("created", ticket_id=ticket.id, refused_files=refused)
    except tickets.TicketError as exc:
        session.rollback()
        logger.warning("mail-in: refused mail from %s: %s", mail.from_addr, exc)
        return IngestResult("rejected", reason=str(exc))


# --- SMTP receiver ---------------------------------------------------------------------------

class MailInHandler:
    """aiosmtpd handler: each message is ingested in a worker thread inside the app context."""

    def __init__(self, app):
        self.app = app

    def _ingest(self, raw: bytes) -> IngestResult:
        with self.app.app_context():
            try:
                return ingest_raw_mail(db.session, raw)
            finally:
                db.session.remove()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(None, self._ingest, raw)
        except Exception:  # keep the mail at the sender: they retry later
            logger.exception("mail-in: ingest failed")
            return "451 4.3.0 Temporary failure, please retry later"
        if result.action == "rejected" and result.reason == "too_large":
            return "552 5.3.4 Message too big"
        if result.action == "deferred":  # over the sender's limit: kept at the sender, whose server retries
            return "451 4.7.1 Too many new requests from this sender, please try again later"
        logger.info("mail-in: %s", result.as_dict())
        return "250 2.0.0 OK" + (f" {result.ref}" if result.ref else "")


def make_controller(app, host: str = "127.0.0.1", port: int = 2525):
    """An aiosmtpd Controller (start()/stop()) that refuses mail above the size limit with 552."""
    from aiosmtpd.controller import Controller

    with app.app_context():
        limit = max_mail_bytes()
    return Controller(MailInHandler(app), hostname=host, port=port, data_size_limit=limit,
                      server_hostname="helpdesk-mail-in")
