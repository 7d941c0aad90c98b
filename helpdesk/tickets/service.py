"""Ticket lifecycle: creation, transitions, replies, assignment, escalation, merge, links, scoping.

Public functions take a session, plain values and an explicit `Actor`; they commit once at the end
(unless `commit=False`) and raise `TicketError` subclasses for refused operations.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.exc import IntegrityError
from flask_babel import lazy_gettext as _l

from helpdesk import audit
from helpdesk.accounts.models import Organisation, User
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.lookup_cache import LookupCache, attach, column_values
from helpdesk.templating import CHANNEL_LABELS, STATUS_LABELS
from helpdesk.text import clean_input, normalize, one_line
from helpdesk.tickets import effects, live, repository, requesters, timelog
from helpdesk.tickets.models import (CHANNELS, OPEN_STATUSES, PRIORITIES, TIERS, TRANSITIONS, Category,
                                     TransitionRefused,
                                     category_label,
                                     Comment, FormNonce, Ticket, TicketArticle, TicketEvent, TicketLink,
                                     TicketTag, parse_ref)
from helpdesk.jobs import redis_connection

logger = logging.getLogger(__name__)


class TicketError(Exception):
    """A refused ticket operation; the message is shown to the user."""


class InvalidTransition(TicketError):
    pass


class NotFound(TicketError):
    pass


class VersionConflict(TicketError):
    def __init__(self, ticket: Ticket):
        super().__init__(_l("このチケットは他の担当者が更新しました。最新の内容を確認してから保存してください。"))
        self.ticket = ticket


class DuplicateSubmission(TicketError):
    def __init__(self, ticket_id: int | None):
        super().__init__(_l("このフォームは既に送信済みです。"))
        self.ticket_id = ticket_id


# --- scoping -------------------------------------------------------------------------------

def visible_clause(user: User):
    """The WHERE clause limiting tickets to what `user` may see (None = everything).

    Staff (agent, specialist, supervisor, admin) see every ticket. A requester sees their own
    organisation's tickets; a municipality user also sees the tickets of clinics registered under
    their municipality (Organisation.parent_id). Users without an organisation see only their own.
    """
    if user.is_staff:
        return None
    if user.organisation_id is None:
        return Ticket.requester_id == user.id
    clause = Ticket.organisation_id == user.organisation_id
    if user.org_kind == "municipality":
        children = select(Organisation.id).where(Organisation.parent_id == user.organisation_id)
        clause = or_(clause, Ticket.organisation_id.in_(children))
    return clause


def visible_tickets(user: User) -> Select:
    stmt = select(Ticket)
    clause = visible_clause(user)
    return stmt if clause is None else stmt.where(clause)


def can_see(user: User, ticket: Ticket) -> bool:
    if user.is_staff:
        return True
    if user.organisation_id is None:
        return ticket.requester_id == user.id
    if ticket.organisation_id == user.organisation_id:
        return True
    return (user.org_kind == "municipality" and ticket.organisation is not None
            and ticket.organisation.parent_id == user.organisation_id)


def get_visible(session, user: User, ref_or_id: str | int) -> Ticket:
    """The ticket if `user` may see it; NotFound otherwise (callers answer 404, never 403)."""
    ticket_id = ref_or_id if isinstance(ref_or_id, int) else parse_ref(str(ref_or_id))
    ticket = session.get(Ticket, ticket_id) if ticket_id else None
    if ticket is None or not can_see(user, ticket):
        raise NotFound(_l("チケットが見つかりません。"))
    return ticket


# --- helpers -------------------------------------------------------------------------------

def _new_event(ticket: Ticket, actor: Actor, kind: str, before=None, after=None, detail: dict | None = None,
               at: dt.datetime | None = None) -> TicketEvent:
    return TicketEvent(ticket_id=ticket.id, actor_id=actor.user_id, actor_label=actor.label, kind=kind,
                       before=None if before is None else str(before),
                       after=None if after is None else str(after), detail=detail, at=at or utcnow())


def _event(session, ticket: Ticket, actor: Actor, kind: str, before=None, after=None,
           detail: dict | None = None, emit: bool = True, at: dt.datetime | None = None) -> TicketEvent:
    """Record one change on the timeline, then run its effects (SLA clock, mail, webhooks) unless
    `emit` is False (a change that causes none, e.g. an attachment added)."""
    ev = _new_event(ticket, actor, kind, before, after, detail, at)
    session.add(ev)
    session.flush()
    live.note(session, ticket, actor, kind, ev.id)  # open queue pages hear of it after the commit
    if emit:
        effects.changed(session, ticket, actor, ev)
    return ev


def _check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and int(expected_version) != ticket.version:
        raise VersionConflict(ticket)


def _commit(session, commit: bool) -> None:
    if commit:
        session.commit()
    else:
        session.flush()


def refresh_search_text(session, ticket: Ticket) -> None:
    """Rebuild the normalised search column from subject, body and every reply/note."""
    ticket.search_text = _search_text(session, ticket)


def _search_text(session, ticket: Ticket) -> str:
    parts = [ticket.subject or "", ticket.body or ""]
    if ticket.id is not None:
        parts += session.scalars(select(Comment.body).where(Comment.ticket_id == ticket.id)
                                 .order_by(Comment.id)).all()
    return normalize("\n".join(parts))


_CATEGORIES = LookupCache("categories", lambda: (Category,))


def _category_rows(session) -> dict[str, dict]:
    """code → column values of every category (plain values: what the lookup cache keeps)."""
    return {c.code: column_values(c) for c in session.scalars(select(Category))}


def _cached_categories(session) -> dict[str, dict]:
    return _CATEGORIES.get(session, "all", lambda: _category_rows(session))


def category_choices(session, locale: str = "ja") -> list[tuple[str, str]]:
    """(code, label) of the active categories in display order, from the lookup cache."""
    rows = sorted(_cached_categories(session).values(), key=lambda r: (r["position"], r["id"]))
    return [(r["code"], category_label(r["name_ja"], r["name_en"], locale)) for r in rows if r["active"]]


def category_by_code(session, code: str | None) -> Category | None:
    """The category with `code`, from the per-process lookup cache (no query when cached)."""
    if not code:
        return None
    values = _cached_categories(session).get(code)
    if values is None:  # maybe created a moment ago in another process: ask the database
        values = _category_rows(session).get(code)
    if values is None:
        raise TicketError(_l("カテゴリ「%(code)s」は存在しません。", code=code))
    return attach(session, Category, values)


# --- creation ------------------------------------------------------------------------------

def create_ticket(session, *, actor: Actor, subject: str, body: str = "", channel: str = "web",
                  requester_id: int | None = None, organisation_id: int | None = None,
                  category: str | None = None, priority: str = "P3", tags: Iterable[str] = (),
                  nonce: str | None = None, external_id: str | None = None,
                  created_at: dt.datetime | None = None, context: dict | None = None,
                  call_started_at: dt.datetime | None = None, call_ended_at: dt.datetime | None = None,
                  resolved_on_call: bool = False, assignee_id: int | None = None,
                  commit: bool = True) -> Ticket:
    """Create a ticket and its 'created' event; a repeated form nonce raises DuplicateSubmission."""
    subject = one_line(subject, 300)  # a subject is one line: CR/LF would end up in mail headers
    body = clean_input(body, 100_000)
    if not subject:
        raise TicketError(_l("件名を入力してください。"))
    if channel not in CHANNELS:
        raise TicketError(_l("受付チャネル「%(channel)s」は使えません。", channel=CHANNEL_LABELS.get(channel, channel)))
    if priority not in PRIORITIES:
        raise TicketError(_l("優先度「%(priority)s」は使えません。", priority=priority))
    # A repeated form nonce is caught by the form_nonces primary key below (no look-up first: a double
    # submit is rare, a look-up on every creation is not free).
    requester = session.get(User, requester_id) if requester_id else None
    if requester_id and requester is None:
        raise TicketError(_l("依頼者が見つかりません。"))
    if organisation_id is None and requester is not None:
        organisation_id = requester.organisation_id
    organisation = session.get(Organisation, organisation_id) if organisation_id else None
    cat = category_by_code(session, category)
    now = created_at or utcnow()
    ticket = Ticket(subject=subject, body=body, channel=channel, requester_id=requester_id,
                    organisation_id=organisation_id, role=organisation.kind if organisation else None,
                    category_id=cat.id if cat else None, category=cat, priority=priority, status="new",
                    tier="L1", external_id=external_id, context=context, created_at=now, updated_at=now,
                    assignee_id=assignee_id)
    if call_started_at and call_ended_at and call_ended_at >= call_started_at:
        ticket.call_started_at, ticket.call_ended_at = call_started_at, call_ended_at
        ticket.handle_seconds = int((call_ended_at - call_started_at).total_seconds())
        # Answering the call is the first response.
        ticket.first_response_at = call_started_at
    ticket.organisation = organisation
    ticket.requester = requester
    # A new ticket has no replies yet: its search text is subject + body.
    ticket.search_text = normalize(subject + "\n" + body)
    clock = effects.stamp_sla(session, ticket)  # 1. SLA due dates and badge, written by the INSERT below
    # 2. One INSERT … RETURNING; the ticket then joins the session as if loaded (changes later in this
    # request are ordinary UPDATEs). Its tags are inserted the same way; setting the collection (even
    # empty) as loaded spares a query for it later in the request.
    repository.insert_ticket(session, ticket, sorted({normalize_tag(t) for t in tags if normalize_tag(t)}))
    if nonce:
        # The primary key on form_nonces makes two concurrent posts of one form create one ticket:
        # the loser's transaction (with its ticket) is rolled back.
        session.add(FormNonce(nonce=nonce, ticket_id=ticket.id, created_at=now))
        try:
            session.flush()  # the nonce's primary key decides now, before anything else is queued
        except IntegrityError:
            session.rollback()
            existing = session.get(FormNonce, nonce)
            if existing is not None:
                raise DuplicateSubmission(existing.ticket_id)
            raise
    # Append-only and never changed in this request: inserted directly, without the unit of work.
    ev = repository.insert_event(session, _new_event(ticket, actor, "created", after=channel, at=now))
    live.note(session, ticket, actor, "created", ev.id)  # open queue pages hear of it after the commit
    # 3. SLA clock row → notification rows → webhook event rows → insights scheduling → extensions.
    effects.created(session, ticket, actor, ev, clock)
    if resolved_on_call:
        ticket.resolved_on_first_contact = True
        _set_status(session, ticket, "resolved", actor, at=call_ended_at or now)
    if commit:
        session.commit()
    # Otherwise the caller commits: ticket, tags, event and clock are already inserted; the outbox rows
    # the effects queued go with the caller's own rows.
    return ticket


def normalize_tag(tag: str) -> str:
    return normalize(tag).replace(" ", "-")[:50]


# --- status --------------------------------------------------------------------------------

def _set_status(session, ticket: Ticket, status: str, actor: Actor, at: dt.datetime | None = None,
                detail: dict | None = None) -> None:
    if status == ticket.status:
        return
    try:
        before = ticket.move_to(status, at or utcnow())
    except TransitionRefused:
        raise InvalidTransition(_l("ステータスを「%(before)s」から「%(after)s」には変更できません。",
                                   before=STATUS_LABELS.get(ticket.status, ticket.status),
                                   after=STATUS_LABELS.get(status, status))) from None
    _event(session, ticket, actor, "status", before, status, detail)


def change_status(session, ticket_id: int, status: str, actor: Actor, *, expected_version: int | None = None,
                  commit: bool = True) -> Ticket:
    ticket = _get(session, ticket_id)
    _check_version(ticket, expected_version)
    _set_status(session, ticket, status, actor)
    _commit(session, commit)
    return ticket


def _get(session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(_l("チケットが見つかりません。"))
    return ticket


# --- field changes -------------------------------------------------------------------------

def update_fields(session, ticket_id: int, actor: Actor, *, expected_version: int | None = None,
                  priority: str | None = None, category: str | None = None, assignee_id: int | None | str = "keep",
                  assignee_email: str | None = None, status: str | None = None, commit: bool = True) -> Ticket:
    """Change several fields at once (one version check, VersionConflict first); each change is its own event.

    `assignee_email` names the assignee by login id instead of `assignee_id` (requesters.UnknownReference
    when no staff member has it)."""
    ticket = _get(session, ticket_id)
    _check_version(ticket, expected_version)
    if assignee_email is not None:
        assignee_id = requesters.staff_by_email(session, assignee_email).id
    if priority is not None and priority != ticket.priority:
        if priority not in PRIORITIES:
            raise TicketError(_l("優先度「%(priority)s」は使えません。", priority=priority))
        before, ticket.priority = ticket.priority, priority
        _event(session, ticket, actor, "priority", before, priority)
    if category is not None:
        cat = category_by_code(session, category) if category else None
        if (cat.id if cat else None) != ticket.category_id:
            before = ticket.category.code if ticket.category else None
            ticket.category_id, ticket.category = (cat.id if cat else None), cat
            _event(session, ticket, actor, "category", before, cat.code if cat else None)
    if assignee_id != "keep" and assignee_id != ticket.assignee_id:
        _assign(session, ticket, assignee_id, actor)
    if status is not None:
        _set_status(session, ticket, status, actor)
    _commit(session, commit)
    return ticket


def _assign(session, ticket: Ticket, assignee_id: int | None, actor: Actor) -> None:
    assignee = None
    if assignee_id is not None:
        assignee = session.get(User, assignee_id)
        if assignee is None or not assignee.is_staff:
            raise TicketError(_l("担当者に指定できるのはヘルプデスクの担当者だけです。"))
    before = ticket.assignee.email if ticket.assignee else None
    ticket.assignee_id, ticket.assignee = assignee_id, assignee
    if ticket.status == "new" and assignee is not None:
        _set_status(session, ticket, "open", actor)
    _event(session, ticket, actor, "assignee", before, assignee.email if assignee else None)


def assign(session, ticket_id: int, assignee_id: int | None, actor: Actor, *,
           expected_version: int | None = None, commit: bool = True) -> Ticket:
    return update_fields(session, ticket_id, actor, expected_version=expected_version,
                         assignee_id=assignee_id, commit=commit)


def escalate(session, ticket_id: int, tier: str, reason: str, actor: Actor, *,
             expected_version: int | None = None, commit: bool = True) -> Ticket:
    """Move a ticket to L2 or dev; a reason is required and kept on the timeline."""
    ticket = _get(session, ticket_id)
    _check_version(ticket, expected_version)
    reason = clean_input(reason, 2000)
    if tier not in TIERS:
        raise TicketError(_l("エスカレーション先「%(tier)s」は使えません。", tier=tier))
    if TIERS.index(tier) <= TIERS.index(ticket.tier):
        raise TicketError(_l("エスカレーションは現在より上の段階（L1 → L2 → 開発）にだけできます。"))
    if not reason:
        raise TicketError(_l("エスカレーションの理由を入力してください。"))
    before, ticket.tier = ticket.tier, tier
    _event(session, ticket, actor, "escalation", before, tier, {"reason": reason})
    if ticket.status != "escalated":
        _set_status(session, ticket, "escalated", actor)
    _commit(session, commit)
    return ticket


# --- replies -------------------------------------------------------------------------------

def add_comment(session, ticket_id: int, body: str, actor: Actor, *, public: bool = True, via: str = "web",
                message_id: str | None = None, expected_version: int | None = None, system: bool = False,
                commit: bool = True) -> Comment:
    """Add a public reply or an internal note; a requester's reply reopens a recently resolved ticket.

    `system=True`: an internal note written by the desk itself (an automation rule; the actor has no
    user): no author, allowed on a closed ticket, the status is left alone. It is written inside the
    change that triggered it, so the ticket is taken as loaded (no row lock, no refresh).

    Replies never conflict with each other or with a concurrent field change: the ticket's row is
    locked (concurrent replies take turns, each seeing the other's text) and the reply's own writes to
    the ticket (last activity, search text, first response) leave its `version` alone. Only a status
    change the reply causes (new → open, pending → open, reopen) is a versioned edit.
    """
    from flask import current_app, has_app_context

    ticket = session.get(Ticket, ticket_id) if system else repository.lock_ticket(session, ticket_id)
    if ticket is None:
        raise NotFound(_l("チケットが見つかりません。"))
    _check_version(ticket, expected_version)
    body = clean_input(body, 100_000)
    if not body:
        raise TicketError(_l("本文を入力してください。"))
    if system and public:
        raise ValueError("a system actor writes internal notes only")
    author = session.get(User, actor.user_id) if actor.user_id and not system else None
    from_staff = bool(author and author.is_staff) or system
    if not from_staff and not public:
        raise TicketError(_l("内部メモはヘルプデスクの担当者だけが書けます。"))
    if ticket.status == "closed" and not system:
        raise TicketError(_l("このチケットは完了（クローズ）しています。新しいお問い合わせとして送信してください。"))
    comment = Comment(ticket_id=ticket.id, author_id=None if system else actor.user_id, body=body,
                      is_public=public, via=via, message_id=message_id)
    session.add(comment)
    session.flush()
    activity = {"updated_at": utcnow(), "search_text": _search_text(session, ticket)}
    if from_staff and public and ticket.first_response_at is None:
        activity["first_response_at"] = comment.created_at
    repository.write_unversioned(session, ticket, **activity)
    _event(session, ticket, actor, "reply" if public else "note", detail={"comment_id": comment.id})
    if from_staff and public:
        if ticket.status == "new":
            _set_status(session, ticket, "open", actor)
    elif not from_staff:
        reopen_days = current_app.config.get("TICKET_REOPEN_DAYS", 14) if has_app_context() else 14
        if ticket.status == "pending":
            _set_status(session, ticket, "open", actor, detail={"reason": "requester_reply"})
        elif ticket.status == "resolved" and ticket.resolved_at and \
                utcnow() - ticket.resolved_at <= dt.timedelta(days=reopen_days):
            _set_status(session, ticket, "open", actor, detail={"reason": "reopened_by_reply"})
    effects.comment_added(session, ticket, actor, comment)
    _commit(session, commit)
    return comment


def agent_reply(session, ticket_id: int, body: str, actor: Actor, *, public: bool = True,
                expected_version: int | None = None, minutes=None, category: str | None = None,
                status_after: str | None = None) -> Comment:
    """An agent's reply or internal note as one unit of work, committed together or not at all.

    The comment; the minutes of work behind it (time tracking); the category of a macro the agent
    kept; the status chosen for after the reply. Any refusal (VersionConflict, TicketError,
    TimeLogError) rolls the whole reply back, so nothing is half-sent.
    """
    try:
        comment = add_comment(session, ticket_id, body, actor, public=public,
                              expected_version=expected_version, commit=False)
        timelog.log_minutes(session, comment, minutes, actor)
        if category:
            update_fields(session, ticket_id, actor, category=category, commit=False)
        if status_after:
            change_status(session, ticket_id, status_after, actor, commit=False)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return comment


# --- tags, links, articles, merge ----------------------------------------------------------

def add_tag(session, ticket_id: int, tag: str, actor: Actor, *, commit: bool = True) -> Ticket:
    ticket = _get(session, ticket_id)
    tag = normalize_tag(tag)
    if not tag:
        raise TicketError(_l("タグを入力してください。"))
    if tag not in ticket.tag_names:
        ticket.tags.append(TicketTag(tag=tag))
        _event(session, ticket, actor, "tag", None, tag)
    _commit(session, commit)
    return ticket


def remove_tag(session, ticket_id: int, tag: str, actor: Actor, *, commit: bool = True) -> Ticket:
    ticket = _get(session, ticket_id)
    for row in list(ticket.tags):
        if row.tag == tag:
            ticket.tags.remove(row)
            _event(session, ticket, actor, "tag", tag, None)
    _commit(session, commit)
    return ticket


def link_tickets(session, ticket_id: int, other_id: int, actor: Actor, *, commit: bool = True) -> None:
    if ticket_id == other_id:
        raise TicketError(_l("同じチケットは関連付けできません。"))
    ticket, other = _get(session, ticket_id), _get(session, other_id)
    a, b = sorted((ticket.id, other.id))
    if session.get(TicketLink, (a, b)) is None:
        session.add(TicketLink(ticket_id=a, other_id=b))
        _event(session, ticket, actor, "link", None, other.ref)
        _event(session, other, actor, "link", None, ticket.ref)
    _commit(session, commit)


def related_tickets(session, ticket_id: int) -> list[Ticket]:
    ids = session.scalars(select(TicketLink.other_id).where(TicketLink.ticket_id == ticket_id)).all()
    ids += session.scalars(select(TicketLink.ticket_id).where(TicketLink.other_id == ticket_id)).all()
    return list(session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id))) if ids else []


def link_article(session, ticket_id: int, slug: str, actor: Actor, *, resolved_by: bool = False,
                 commit: bool = True) -> TicketArticle:
    """Link a manual article to a ticket (sent in a reply, or marked as what resolved it)."""
    ticket = _get(session, ticket_id)
    slug = (slug or "").strip()[:120]
    if not slug:
        raise TicketError(_l("記事を指定してください。"))
    link = session.get(TicketArticle, (ticket.id, slug))
    if link is None:
        link = TicketArticle(ticket_id=ticket.id, slug=slug, linked_by_id=actor.user_id)
        session.add(link)
        _event(session, ticket, actor, "article", None, slug)
    if resolved_by and not link.resolved_by:
        link.resolved_by = True
        before, ticket.resolved_by_article = ticket.resolved_by_article, slug
        _event(session, ticket, actor, "resolved_by_article", before, slug)
    _commit(session, commit)
    return link


def unlink_article(session, ticket_id: int, slug: str, actor: Actor, *, commit: bool = True) -> None:
    ticket = _get(session, ticket_id)
    if session.execute(delete(TicketArticle).where(TicketArticle.ticket_id == ticket.id,
                                                   TicketArticle.slug == slug)).rowcount:
        _event(session, ticket, actor, "article", slug, None)
        if ticket.resolved_by_article == slug:
            ticket.resolved_by_article = None
    _commit(session, commit)


def merge_tickets(session, source_id: int, target_id: int, actor: Actor, *, expected_version: int | None = None,
                  commit: bool = True) -> Ticket:
    """Close `source` with a pointer to `target`; both timelines keep their history.

    `expected_version`: the version of `source` the agent saw (VersionConflict if it changed since)."""
    if source_id == target_id:
        raise TicketError(_l("同じチケットには統合できません。"))
    source, target = _get(session, source_id), _get(session, target_id)
    _check_version(source, expected_version)
    if target.merged_into_id:
        raise TicketError(_l("%(ref)s は既に別のチケットに統合されています。", ref=target.ref))
    if source.status == "closed":
        raise TicketError(_l("%(ref)s は既にクローズされています。", ref=source.ref))
    source.merged_into_id = target.id
    _event(session, source, actor, "merge", None, target.ref)
    _event(session, target, actor, "merged_in", None, source.ref)
    if "resolved" in TRANSITIONS[source.status]:
        _set_status(session, source, "resolved", actor, detail={"reason": "merged"})
    _set_status(session, source, "closed", actor, detail={"reason": "merged"})
    _commit(session, commit)
    return target


def rate(session, ticket_id: int, score: int, comment: str | None, actor: Actor, *, commit: bool = True) -> Ticket:
    ticket = _get(session, ticket_id)
    if ticket.status not in ("resolved", "closed"):
        raise TicketError(_l("解決済みのチケットだけ評価できます。"))
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise TicketError(_l("評価は1〜5の数字で選んでください。"))
    before, ticket.csat_score = ticket.csat_score, score
    ticket.csat_comment = clean_input(comment, 2000) or None
    _event(session, ticket, actor, "csat", before, score)
    _commit(session, commit)
    return ticket


def auto_close_resolved(session, older_than_days: int, actor: Actor | None = None) -> int:
    """Close tickets resolved more than N days ago; returns how many were closed."""
    actor = actor or Actor.system("auto-close")
    cutoff = utcnow() - dt.timedelta(days=older_than_days)
    ids = session.scalars(select(Ticket.id).where(Ticket.status == "resolved",
                                                  Ticket.resolved_at < cutoff)).all()
    for ticket_id in ids:
        _set_status(session, session.get(Ticket, ticket_id), "closed", actor, detail={"reason": "auto_close"})
    session.commit()
    return len(ids)


def timeline(session, ticket: Ticket, *, include_internal: bool) -> list:
    """Events and comments in time order; requesters never get internal notes."""
    comments = session.scalars(select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.id)).all()
    events = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                             .order_by(TicketEvent.id)).all()
    if not include_internal:
        comments = [c for c in comments if c.is_public]
        events = [e for e in events if e.kind not in ("note",)]
    items = [("comment", c.created_at, c) for c in comments] + [("event", e.at, e) for e in events]
    return sorted(items, key=lambda item: (item[1], 0 if item[0] == "event" else 1))


def ensure_categories(session) -> None:
    """Create the default categories if missing (idempotent)."""
    defaults = [
        ("login", "ログイン・アカウント", "Login & account"), ("password", "パスワード", "Password"),
        ("browser", "ブラウザ・利用環境", "Browser & environment"), ("allocation", "割当", "Allocation"),
        ("delivery", "配送・納品", "Delivery"), ("vaccination_records", "接種記録", "Vaccination records"),
        ("disposal", "廃棄", "Disposal"), ("data_correction", "データ修正", "Data correction"),
        ("system_error", "システムエラー", "System error"), ("other", "その他", "Other"),
    ]
    have = set(session.scalars(select(Category.code)).all())
    for position, (code, ja, en) in enumerate(defaults):
        if code not in have:
            session.add(Category(code=code, name_ja=ja, name_en=en, position=position))
    session.flush()




# --- duplicate hint, bulk actions, presence ---------------------------------------------------

@dataclass
class Similar:
    ticket: Ticket
    #: 0..1: share of the text's character trigrams found in the ticket.
    score: float


def _grams(text_: str, n: int = 3) -> set[str]:
    text_ = normalize(text_).replace(" ", "")
    if len(text_) < n:
        return {text_} if text_ else set()
    return {text_[i:i + n] for i in range(len(text_) - n + 1)}


def similar_open_tickets(session, organisation_id: int | None, text: str, limit: int = 5, *,
                         exclude_id: int | None = None, min_score: float = 0.15,
                         scan: int = 500) -> list[Similar]:
    """Open tickets of the organisation whose text shares many character trigrams with `text`.

    Japanese-aware without a tokenizer: overlapping trigrams of the NFKC-normalised text, scored by
    the share of the query's trigrams present in the ticket (so a short call summary matches a
    long ticket). Looks at the organisation's `scan` most recent open tickets.
    """
    query = _grams(text[:2000])
    if not query:
        return []
    stmt = (select(Ticket).where(Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.created_at.desc()).limit(scan))
    if organisation_id is not None:
        stmt = stmt.where(Ticket.organisation_id == organisation_id)
    if exclude_id is not None:
        stmt = stmt.where(Ticket.id != exclude_id)
    found = []
    for ticket in session.scalars(stmt):
        grams = _grams(ticket.search_text or ticket.subject)
        score = len(query & grams) / len(query)
        if score >= min_score:
            found.append(Similar(ticket, round(score, 3)))
    found.sort(key=lambda s: (-s.score, -s.ticket.id))
    return found[:limit]


@dataclass
class BulkResult:
    done: list[str]
    #: (ref, reason) of every ticket the action was refused for.
    refused: list[tuple[str, str]]


BULK_ACTIONS = ("assign", "status", "priority", "category", "tag", "merge")


def bulk_apply(session, ticket_ids: Iterable[int], action: str, value: str | int | None, actor: Actor,
               *, visible_to: User | None = None) -> BulkResult:
    """Apply one action to many tickets; each ticket succeeds or is refused on its own (savepoints)."""
    if action not in BULK_ACTIONS:
        raise TicketError(_l("一括操作「%(action)s」は使えません。", action=action))
    result = BulkResult([], [])
    target_id = None
    if action == "merge":
        target_id = parse_ref(str(value or ""))
        target = session.get(Ticket, target_id) if target_id else None
        if target is None or (visible_to is not None and not can_see(visible_to, target)):
            raise TicketError(_l("統合先のチケット番号が見つかりません（例: HD-000123）。"))
    for ticket_id in dict.fromkeys(int(i) for i in ticket_ids):
        ticket = session.get(Ticket, ticket_id)
        ref = ticket.ref if ticket else f"#{ticket_id}"
        if ticket is None or (visible_to is not None and not can_see(visible_to, ticket)):
            result.refused.append((ref, str(_l("チケットが見つかりません。"))))
            continue
        savepoint = session.begin_nested()
        try:
            if action == "assign":
                update_fields(session, ticket_id, actor, assignee_id=int(value) if value else None, commit=False)
            elif action == "status":
                update_fields(session, ticket_id, actor, status=str(value), commit=False)
            elif action == "priority":
                update_fields(session, ticket_id, actor, priority=str(value), commit=False)
            elif action == "category":
                update_fields(session, ticket_id, actor, category=str(value or ""), commit=False)
            elif action == "tag":
                add_tag(session, ticket_id, str(value or ""), actor, commit=False)
            elif action == "merge":
                merge_tickets(session, ticket_id, target_id, actor, commit=False)
            savepoint.commit()
            result.done.append(ref)
        except (TicketError, ValueError) as exc:
            savepoint.rollback()
            result.refused.append((ref, str(exc)))
    audit.record(session, actor, f"tickets.bulk_{action}", "ticket", None,
                 {"value": None if value is None else str(value), "done": result.done,
                  "refused": [r for r, _ in result.refused]})
    session.commit()
    return result


PRESENCE_TTL = 45  # seconds; the ticket page polls every 15 s


def touch_presence(ticket_id: int, user_id: int, name: str, mode: str = "viewing") -> None:
    """Record that `user_id` is viewing (or replying to) a ticket now."""
    mode = "replying" if mode == "replying" else "viewing"
    entry = json.dumps({"name": name, "mode": mode, "at": time.time()}, ensure_ascii=False)
    conn = _presence_redis()
    if conn is not None:
        key = f"helpdesk:presence:{ticket_id}"
        try:
            pipe = conn.pipeline()
            pipe.hset(key, str(user_id), entry)
            pipe.expire(key, PRESENCE_TTL)
            pipe.execute()
            return
        except Exception as exc:  # presence is a hint: never fail the page for it
            logger.warning("presence not recorded (%s)", exc)
    _PRESENCE.setdefault(ticket_id, {})[user_id] = entry


def presence(ticket_id: int, exclude_user_id: int | None = None) -> list[dict]:
    """Who else looked at the ticket in the last PRESENCE_TTL seconds: [{name, mode}]."""
    conn = _presence_redis()
    raw: dict = {}
    if conn is not None:
        try:
            raw = {k.decode(): v.decode() for k, v in conn.hgetall(f"helpdesk:presence:{ticket_id}").items()}
        except Exception as exc:
            logger.warning("presence not read (%s)", exc)
    else:
        raw = {str(k): v for k, v in _PRESENCE.get(ticket_id, {}).items()}
    now, out = time.time(), []
    for uid, value in raw.items():
        entry = json.loads(value)
        if str(uid) == str(exclude_user_id) or now - entry["at"] > PRESENCE_TTL:
            continue
        out.append({"name": entry["name"], "mode": entry["mode"]})
    return sorted(out, key=lambda e: (e["mode"] != "replying", e["name"]))


_PRESENCE: dict[int, dict[int, str]] = {}


def _presence_redis():
    from flask import current_app, has_app_context

    if not has_app_context() or not current_app.config.get("REDIS_URL"):
        return None
    return redis_connection()
