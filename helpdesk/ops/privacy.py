"""Personal-data duties under APPI (個人情報保護法): disclosure export, anonymisation on request, retention.

- `export_person`: everything the desk holds about one person — profile, the tickets they asked (with
  every reply, internal notes flagged `internal` so the operator can review before disclosing), their
  replies elsewhere, ticket events, audit rows about them or by them, mail sent to them — as JSON plus
  the files of their tickets.
- `anonymise_person`: name, kana, e-mail and phone removed from the account (disabled, sessions ended);
  their tickets' free text masked with `insights.pii.scrub` (their names, any e-mail / phone / address /
  My Number), their files deleted; mentions of their full name, e-mail or phone in other tickets masked.
  Tickets, categories, dates and SLA figures stay for statistics.
- `apply_retention`: closed tickets closed more than N years ago get the same masking (names found in
  the text too) and lose their files; each ticket is marked once (`anonymisations`), so runs are idempotent.

Every function takes `dry_run`: the changes are made in the transaction, counted, and rolled back, so
the dry run reports exactly what a real run would change. Real runs write an audit row (counts and ids,
never the personal data itself). The audit trail is append-only and keeps the acting account's login
id on rows written before the anonymisation (a legal record, see README).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from dataclasses import dataclass, field

from sqlalchemy import or_, select

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.insights import pii
from helpdesk.text import normalize
from helpdesk.accounts.models import AuditLog, PasswordResetToken, User
from helpdesk.notify.models import Outbox
from helpdesk.ops.models import Anonymisation
from helpdesk.tickets.models import Attachment, Comment, Ticket, TicketEvent
from helpdesk.tickets.service import refresh_search_text

DELETED_FILE = "削除済み（個人情報保護）"


class PrivacyError(Exception):
    """A request that cannot be carried out; the message says why."""


@dataclass
class Report:
    """What an anonymisation or retention run changed (or would change, for a dry run)."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    tickets: list[str] = field(default_factory=list)
    previews: list[dict] = field(default_factory=list)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "counts": dict(sorted(self.counts.items())), "tickets": self.tickets,
                "previews": self.previews}


def _models():
    return AuditLog, PasswordResetToken, User, Outbox, Attachment, Comment, Ticket, TicketEvent


def find_person(session, who: str):
    """The user with this e-mail (case-insensitive) or numeric id; PrivacyError if none."""
    _, _, User, *_ = _models()
    who = (who or "").strip()
    user = session.get(User, int(who)) if who.isdigit() else session.scalar(
        select(User).where(User.email == who.lower()))
    if user is None and not who.isdigit():
        user = session.scalar(select(User).where(User.email == who))
    if user is None:
        raise PrivacyError(f"no person with e-mail or id {who!r}")
    return user


def _iso(value):
    return value.isoformat(timespec="seconds") if isinstance(value, dt.datetime) else value


# --- export -------------------------------------------------------------------------------------

def export_person(session, storage, user) -> tuple[dict, list[tuple[str, bytes]]]:
    """(JSON-able document, [(path in the archive, bytes)]) of everything held about `user`."""
    AuditLog, _, _, Outbox, Attachment, Comment, Ticket, TicketEvent = _models()
    org = user.organisation
    doc = {
        "generated_at": _iso(utcnow()),
        "person": {
            "id": user.id, "email": user.email, "name": user.name, "name_kana": user.name_kana,
            "phone": user.phone, "roles": user.roles, "locale": user.locale, "state": user.state,
            "organisation": {"code": org.code, "name": org.name, "kind": org.kind} if org else None,
            "created_at": _iso(user.created_at), "activated_at": _iso(user.activated_at),
            "last_login_at": _iso(user.last_login_at),
        },
        "tickets": [], "comments_on_other_tickets": [], "audit": [], "mail": [],
    }
    files: list[tuple[str, bytes]] = []
    tickets = session.scalars(select(Ticket).where(Ticket.requester_id == user.id).order_by(Ticket.id)).all()
    for t in tickets:
        entry = {
            "ref": t.ref, "subject": t.subject, "body": t.body, "channel": t.channel, "status": t.status,
            "priority": t.priority, "created_at": _iso(t.created_at), "resolved_at": _iso(t.resolved_at),
            "closed_at": _iso(t.closed_at), "csat_score": t.csat_score, "csat_comment": t.csat_comment,
            "comments": [{"at": _iso(c.created_at), "by_this_person": c.author_id == user.id,
                          "internal": not c.is_public, "body": c.body}
                         for c in session.scalars(select(Comment).where(Comment.ticket_id == t.id)
                                                  .order_by(Comment.id))],
            "events": [{"at": _iso(e.at), "kind": e.kind, "before": e.before, "after": e.after,
                        "by_this_person": e.actor_id == user.id}
                       for e in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id)
                                                .order_by(TicketEvent.id))],
            "attachments": [],
        }
        for a in session.scalars(select(Attachment).where(Attachment.ticket_id == t.id).order_by(Attachment.id)):
            data = storage.read(a.stored_name)
            item = {"filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.sha256,
                    "uploaded_at": _iso(a.created_at), "file": None}
            if data is not None:
                item["file"] = f"attachments/{t.ref}/{a.id}_{a.filename}"
                files.append((item["file"], data))
            entry["attachments"].append(item)
        doc["tickets"].append(entry)
    own = {t.id for t in tickets}
    for c, ref_ticket in session.execute(select(Comment, Ticket).join(Ticket, Ticket.id == Comment.ticket_id)
                                         .where(Comment.author_id == user.id).order_by(Comment.id)):
        if c.ticket_id not in own:
            doc["comments_on_other_tickets"].append({"ticket": ref_ticket.ref, "at": _iso(c.created_at),
                                                     "internal": not c.is_public, "body": c.body})
    for row in session.scalars(select(AuditLog).where(or_(
            AuditLog.actor_id == user.id,
            (AuditLog.object_type == "user") & (AuditLog.object_id == str(user.id)))).order_by(AuditLog.id)):
        doc["audit"].append({"at": _iso(row.at), "action": row.action, "object_type": row.object_type,
                             "object_id": row.object_id, "ip": row.ip, "by_this_person": row.actor_id == user.id})
    for row in session.scalars(select(Outbox).where(Outbox.kind == "email", Outbox.recipient == user.email)
                               .order_by(Outbox.id)):
        doc["mail"].append({"created_at": _iso(row.created_at), "subject": row.subject, "state": row.state,
                            "sent_at": _iso(row.sent_at), "body": row.body_text})
    return doc, files


def export_zip(doc: dict, files: list[tuple[str, bytes]]) -> bytes:
    """A zip with person.json and the files (what is handed over for a disclosure request)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("person.json", json.dumps(doc, ensure_ascii=False, indent=2))
        for name, data in files:
            zf.writestr(name, data)
    return buffer.getvalue()


# --- masking ------------------------------------------------------------------------------------

_DIGIT_SEP = r"[-‐‑‒–—―−ｰー－ \u3000()（）]*"


def _digit(ch: str) -> str:
    return f"[{ch}{chr(ord(ch) + 0xFEE0)}]"


def person_pattern(full_names: list[str], email: str | None, phone: str | None) -> re.Pattern | None:
    """Exactly this person's full name(s), e-mail and phone as written in free text (not a surname alone)."""
    parts = []
    for name in full_names:
        chars = [ch for ch in (name or "") if not ch.isspace()]
        if len(chars) >= 2:
            parts.append(r"[ \u3000]*".join(re.escape(ch) for ch in chars))
    if email:
        parts.append(re.escape(email))
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) >= 6:
        parts.append(_DIGIT_SEP.join(_digit(d) for d in digits))
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _mask_mentions(pattern: re.Pattern | None, text: str | None) -> str | None:
    if pattern is None or not text:
        return text
    return pattern.sub(pii.NAME, text)


class _Masker:
    """Applies one text function to every free-text field of a ticket, counting changes."""

    def __init__(self, session, storage, report: Report, fn, *, delete_files: bool):
        self.session, self.storage, self.report, self.fn = session, storage, report, fn
        self.delete_files = delete_files
        self.to_delete: list[str] = []

    def _set(self, obj, attr: str, key: str) -> bool:
        before = getattr(obj, attr)
        if not before:
            return False
        after = self.fn(before)
        if after == before:
            return False
        setattr(obj, attr, after)
        self.report.add(key)
        if len(self.report.previews) < 20:
            self.report.previews.append({"field": key, "after": after[:200]})
        return True

    def ticket(self, ticket) -> bool:
        _, _, _, _, Attachment, Comment, _, TicketEvent = _models()
        changed = False
        for attr in ("subject", "body", "csat_comment"):
            changed |= self._set(ticket, attr, f"ticket.{attr}")
        for c in self.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id)):
            changed |= self._set(c, "body", "comment.body")
        for e in self.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)):
            changed |= self._set(e, "before", "event.before")
            changed |= self._set(e, "after", "event.after")
        if self.delete_files:
            for a in self.session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)):
                if a.filename != DELETED_FILE:
                    a.filename = DELETED_FILE
                    self.to_delete.append(a.stored_name)
                    self.report.add("attachment.deleted")
                    changed = True
        if changed:
            refresh_search_text(self.session, ticket)  # the version column moves on by itself (optimistic lock)
            self.report.tickets.append(ticket.ref)
        return changed

    def finish(self, dry_run: bool) -> None:
        if dry_run:
            self.session.rollback()
            return
        self.session.commit()
        for name in self.to_delete:  # after the commit: a rollback never leaves a row without its file
            self.storage.delete(name)


def anonymise_person(session, storage, user_id: int, actor: Actor, *, dry_run: bool = False) -> Report:
    """Anonymise one person on request (see the module docstring); idempotent."""
    _, PasswordResetToken, User, Outbox, _, Comment, Ticket, TicketEvent = _models()
    user = session.get(User, user_id)
    if user is None:
        raise PrivacyError("no such person")
    report = Report(dry_run=dry_run)
    already = session.scalar(select(Anonymisation).where(Anonymisation.object_type == "user",
                                                         Anonymisation.object_id == user.id))
    if already is not None:
        return report
    names = [n for n in (user.name, user.name_kana) if n]
    mention = person_pattern(names, user.email, user.phone)
    own_mask = lambda text: _mask_mentions(mention, pii.scrub(text, names))  # noqa: E731
    masker = _Masker(session, storage, report, own_mask, delete_files=True)
    own_ids = set()
    for ticket in session.scalars(select(Ticket).where(Ticket.requester_id == user.id).order_by(Ticket.id)):
        own_ids.add(ticket.id)
        masker.ticket(ticket)
    # Their replies on other tickets, and mentions of their full name / e-mail / phone anywhere else.
    other = _Masker(session, storage, report, lambda text: _mask_mentions(mention, text), delete_files=False)
    terms = {normalize(t) for t in [*names, *(n.replace(" ", "").replace("\u3000", "") for n in names),
                                    user.email, user.phone] if t and len(normalize(t)) >= 2}
    candidates = set(session.scalars(select(Comment.ticket_id).where(Comment.author_id == user.id)))
    if terms:
        candidates |= set(session.scalars(select(Ticket.id).where(
            or_(*[Ticket.search_text.like(f"%{t}%") for t in terms]))))
    for ticket_id in sorted(candidates - own_ids):
        other.ticket(session.get(Ticket, ticket_id))
    anonymous_label = f"anonymised-{user.id}"
    n = session.query(TicketEvent).filter(TicketEvent.actor_id == user.id).update(
        {TicketEvent.actor_label: anonymous_label}, synchronize_session=False)
    report.add("event.actor_label", n)
    for row in session.scalars(select(Outbox).where(Outbox.recipient == user.email)):
        row.recipient = f"{anonymous_label}@anonymised.invalid"
        row.subject = pii.scrub(row.subject, names) if row.subject else row.subject
        row.body_text = pii.scrub(row.body_text, names) if row.body_text else row.body_text
        row.body_html = pii.scrub(row.body_html, names) if row.body_html else row.body_html
        report.add("mail.recipient")
    n = session.query(PasswordResetToken).filter(PasswordResetToken.user_id == user.id).delete(
        synchronize_session=False)
    report.add("password_reset_token.deleted", n)
    user.name = f"匿名化済み利用者 {user.id}"
    user.name_kana = None
    user.email = f"{anonymous_label}@anonymised.invalid"
    user.phone = None
    user.password_hash = None
    user.state = "disabled"
    user.session_version = (user.session_version or 1) + 1
    report.add("user.profile")
    session.add(Anonymisation(object_type="user", object_id=user.id, reason="request", actor_label=actor.label))
    if not dry_run:
        audit.record(session, actor, "privacy.anonymised", "user", user.id,
                     {"counts": report.counts, "tickets": report.tickets[:500]})
    masker.to_delete += other.to_delete
    masker.finish(dry_run)
    return report


def apply_retention(session, storage, years: float, actor: Actor, *, dry_run: bool = False,
                    now: dt.datetime | None = None, batch: int = 200) -> Report:
    """Anonymise closed tickets closed more than `years` ago that are not anonymised yet (idempotent)."""
    _, _, _, _, _, _, Ticket, _ = _models()
    if years <= 0:
        raise PrivacyError("the retention period must be more than 0 years")
    cutoff = (now or utcnow()) - dt.timedelta(days=round(365.25 * years))
    report = Report(dry_run=dry_run)
    done = select(Anonymisation.object_id).where(Anonymisation.object_type == "ticket")
    after_id = 0
    while True:
        tickets = session.scalars(select(Ticket).where(
            Ticket.status == "closed", Ticket.closed_at < cutoff, Ticket.id > after_id,
            Ticket.id.not_in(done)).order_by(Ticket.id).limit(batch)).all()
        if not tickets:
            break
        after_id = tickets[-1].id
        chunk = Report(dry_run=dry_run)
        masker = None
        for ticket in tickets:
            requester = session.get(User, ticket.requester_id) if ticket.requester_id else None
            names = [n for n in ((requester.name, requester.name_kana) if requester else ()) if n]
            masker = _Masker(session, storage, chunk, lambda text, names=names: pii.scrub(
                text, names, detect_names=True), delete_files=True)
            masker.ticket(ticket)
            session.add(Anonymisation(object_type="ticket", object_id=ticket.id, reason="retention",
                                      actor_label=actor.label))
            session.flush()
            report.add("ticket.anonymised")
            for name in masker.to_delete:
                chunk.previews.append({"delete": name})
        for key, n in chunk.counts.items():
            report.add(key, n)
        report.tickets += [t.ref for t in tickets]
        report.previews += [p for p in chunk.previews if "delete" not in p][:20 - len(report.previews)]
        deletions = [p["delete"] for p in chunk.previews if "delete" in p]
        if dry_run:
            continue  # rolled back once at the end; keep walking by id
        audit.record(session, actor, "privacy.retention", "ticket", None,
                     {"years": years, "cutoff": cutoff.isoformat(timespec="seconds"),
                      "tickets": [t.ref for t in tickets], "counts": chunk.counts})
        session.commit()
        for name in deletions:
            storage.delete(name)
    if dry_run:
        session.rollback()
    return report
