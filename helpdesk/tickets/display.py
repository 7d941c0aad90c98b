"""How the agent pages show tickets: timeline entries in words, linkified text, the ticket's context.

Read-only helpers for views and templates (no writes, no request): an event becomes one readable
line ("担当者: 未割当 → 受付 二郎"), URLs in replies become links (escaped first, only http/https),
and the ticket page gets the requester's and organisation's recent tickets and the replies of the
tickets merged into it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import case, select
from sqlalchemy.orm import defer

from helpdesk.accounts.models import User
from helpdesk.templating import CHANNEL_LABELS, STATUS_LABELS
from helpdesk.tickets.models import OPEN_STATUSES, Category, Comment, Ticket, TicketEvent
from helpdesk.vocabulary import Priority, Tier, labels

FIELD_LABELS = {
    "status": _l("ステータス"), "priority": _l("優先度"), "category": _l("カテゴリ"), "assignee": _l("担当者"),
    "escalation": _l("対応段階"), "tier": _l("対応段階"), "tag": _l("タグ"), "link": _l("関連チケット"),
    "article": _l("関連マニュアル記事"), "resolved_by_article": _l("解決に使った記事"), "csat": _l("満足度評価"),
    "attachment": _l("添付ファイル"),
}
TIER_LABELS = labels(Tier)
PRIORITY_LABELS = labels(Priority)
ACCOUNT_STATE_LABELS = {"invited": _l("招待済み（未利用）"), "activated": _l("利用中"), "disabled": _l("無効")}
REASON_LABELS = {"requester_reply": _l("お客様の返信"), "reopened_by_reply": _l("お客様の返信で再開"),
                 "merged": _l("統合"), "auto_close": _l("自動クローズ")}
UNASSIGNED = _l("未割当")
NONE = _l("なし")


@dataclass
class Line:
    """One timeline event in words: who did it, and what (already escaped where needed)."""

    text: str
    reason: str | None = None


def people_by_email(session, events) -> dict[str, str]:
    """Display names for the e-mail addresses that assignee events store (one query)."""
    emails = {v for e in events if e.kind == "assignee" for v in (e.before, e.after) if v}
    if not emails:
        return {}
    return dict(session.execute(select(User.email, User.name).where(User.email.in_(emails))).all())


def category_names(session, locale: str) -> dict[str, str]:
    return {c.code: c.label(locale) for c in session.scalars(select(Category))}


def _value(kind: str, value: str | None, people: dict, categories: dict) -> str:
    if value is None or value == "":
        return str(UNASSIGNED) if kind == "assignee" else str(NONE)
    if kind == "status":
        return str(STATUS_LABELS.get(value, value))
    if kind == "priority":
        return str(PRIORITY_LABELS.get(value, value))
    if kind in ("escalation", "tier"):
        return str(TIER_LABELS.get(value, value))
    if kind == "category":
        return categories.get(value, value)
    if kind == "assignee":
        return people.get(value, value)
    return value


def describe(event: TicketEvent, people: dict, categories: dict) -> Line:
    """The event as words with translated field names and values."""
    kind = event.kind
    detail = event.detail or {}
    reason = detail.get("reason")
    reason_text = str(REASON_LABELS.get(reason, reason)) if reason else None
    if kind == "created":
        return Line(str(_l("受付（%(ch)s）", ch=CHANNEL_LABELS.get(event.after, event.after or ""))))
    if kind == "import":
        return Line(str(_l("過去のお問い合わせを取り込み")))
    if kind == "reply":
        return Line(str(_l("お客様へ返信")))
    if kind == "note":
        return Line(str(_l("内部メモを追加")))
    if kind == "merge":
        return Line(str(_l("%(ref)s に統合", ref=event.after)), reason_text)
    if kind == "merged_in":
        return Line(str(_l("%(ref)s を統合", ref=event.after)))
    if kind == "split":
        return Line(str(_l("返信 %(n)s件を %(ref)s に分けました", n=detail.get("count", "?"), ref=event.after)))
    if kind == "split_from":
        return Line(str(_l("%(ref)s から分けたチケット（返信 %(n)s件）", n=detail.get("count", "?"), ref=event.after)))
    if kind == "custom_field":
        from flask_babel import get_locale

        from helpdesk.extensions import db
        from helpdesk.tickets.custom_fields import describe_event

        return Line(describe_event(db.session, event, str(get_locale() or "ja")))
    if kind in ("tag", "link", "article", "attachment") and (event.before is None) != (event.after is None):
        label = FIELD_LABELS.get(kind, kind)
        if event.after is not None:
            return Line(str(_l("%(field)s「%(value)s」を追加", field=label, value=event.after)))
        return Line(str(_l("%(field)s「%(value)s」を外す", field=label, value=event.before)))
    if kind == "escalation":
        line = str(_l("エスカレーション: %(before)s → %(after)s", before=_value(kind, event.before, people, categories),
                      after=_value(kind, event.after, people, categories)))
        return Line(line, detail.get("reason"))
    label = FIELD_LABELS.get(kind)
    if label is None:
        label = kind
    before = _value(kind, event.before, people, categories)
    after = _value(kind, event.after, people, categories)
    return Line(f"{label}: {before} → {after}", reason_text)


_URL = re.compile(r"https?://[^\s<>\"'「」『』（）()、。]+", re.IGNORECASE)
_TRAILING = ".,;:!?"


def linkify(text: str | None) -> Markup:
    """Escape `text`, then turn http(s) URLs into links that open safely (no other markup survives)."""
    if not text:
        return Markup("")
    out, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0)
        trail = ""
        while url and url[-1] in _TRAILING:
            trail, url = url[-1] + trail, url[:-1]
        out.append(escape(text[last:match.start()]))
        out.append(Markup('<a href="{0}" rel="noopener noreferrer nofollow" target="_blank">{0}</a>').format(url))
        out.append(escape(trail))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def account_state(user: User) -> str:
    return str(ACCOUNT_STATE_LABELS.get(user.state, user.state))


# --- context ------------------------------------------------------------------------------------

CONTEXT_LIMIT = 6


def _recent(session, where, exclude_id: int, limit: int) -> list[Ticket]:
    """Open tickets first, then the newest; the current ticket left out."""
    open_first = case((Ticket.status.in_(OPEN_STATUSES), 0), else_=1)
    return list(session.scalars(
        select(Ticket).options(defer(Ticket.body), defer(Ticket.search_text), defer(Ticket.context))
        .where(where, Ticket.id != exclude_id)
        .order_by(open_first, Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)))


def context_tickets(session, ticket: Ticket, limit: int = CONTEXT_LIMIT) -> dict[str, list[Ticket]]:
    """The requester's and the organisation's other recent tickets (open first)."""
    out = {"requester": [], "organisation": []}
    if ticket.requester_id:
        out["requester"] = _recent(session, Ticket.requester_id == ticket.requester_id, ticket.id, limit)
    if ticket.organisation_id:
        seen = {t.id for t in out["requester"]}
        out["organisation"] = [t for t in _recent(session, Ticket.organisation_id == ticket.organisation_id,
                                                  ticket.id, limit + len(seen)) if t.id not in seen][:limit]
    return out


def open_tickets_of(session, user_id: int, limit: int = 20) -> list[Ticket]:
    """A requester's open tickets, newest first (their account page lists them)."""
    return list(session.scalars(
        select(Ticket).options(defer(Ticket.body), defer(Ticket.search_text), defer(Ticket.context))
        .where(Ticket.requester_id == user_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.created_at.desc()).limit(limit)))


def merged_comments(session, ticket: Ticket, *, include_internal: bool = True) -> list[tuple]:
    """Replies and notes of tickets merged into `ticket`, as timeline items ("comment", at, comment, source)."""
    sources = {t.id: t for t in session.scalars(select(Ticket).options(defer(Ticket.search_text))
                                                .where(Ticket.merged_into_id == ticket.id))}
    if not sources:
        return []
    stmt = select(Comment).where(Comment.ticket_id.in_(sources)).order_by(Comment.id)
    if not include_internal:
        stmt = stmt.where(Comment.is_public.is_(True))
    return [("merged", c.created_at, c, sources[c.ticket_id]) for c in session.scalars(stmt)]


def timeline_with_merged(session, ticket: Ticket, items: list) -> list:
    """The ticket's own timeline with the merged tickets' replies and notes in time order."""
    merged = merged_comments(session, ticket)
    if not merged:
        return [(kind, at, obj, None) for kind, at, obj in items]
    rows = [(kind, at, obj, None) for kind, at, obj in items] + merged
    return sorted(rows, key=lambda r: (r[1], 0 if r[0] == "event" else 1))


# --- SLA countdown --------------------------------------------------------------------------------

#: Under this much time left an open ticket is shown as at risk even before the SLA sweep marks it.
AT_RISK_SECONDS = 3600


def _span(seconds: int) -> str:
    minutes = max(0, seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return str(_l("%(d)d日%(h)d時間", d=days, h=hours))
    if hours:
        return str(_l("%(h)d時間%(m)d分", h=hours, m=minutes))
    return str(_l("%(m)d分", m=minutes))


def sla_countdown(ticket: Ticket, now) -> tuple[str, str]:
    """(state, words) for the queue's SLA column: ok / at_risk / breached / done / none.

    Marked with words as well as colour: 「超過 1時間5分」, 「残り 35分（期限間近）」, 「残り 2日3時間」.
    The browser recounts from the row's data-due every 30 s (queue.js) with the same rules.
    """
    due = ticket.resolution_due_at
    if ticket.status in ("resolved", "closed"):
        return "done", str(STATUS_LABELS[ticket.status])
    if due is None:
        return "none", "—"
    left = int((_aware(due) - now).total_seconds())
    if left < 0 or ticket.sla_state == "breached":
        return "breached", str(_l("超過 %(t)s", t=_span(-left))) if left < 0 else str(_l("超過"))
    if left <= AT_RISK_SECONDS or ticket.sla_state == "at_risk":
        return "at_risk", str(_l("残り %(t)s（期限間近）", t=_span(left)))
    return "ok", str(_l("残り %(t)s", t=_span(left)))


def _aware(value):
    import datetime as dt

    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


_CODE_IN_QUOTES = re.compile(r"「([a-z_]+)」")


def reason_in_words(reason: str) -> str:
    """A refusal from the service with status codes replaced by their labels (「new」 → 「新規」)."""
    return _CODE_IN_QUOTES.sub(lambda m: "「" + str(STATUS_LABELS.get(m.group(1), m.group(1))) + "」", reason)


# --- merge and macro previews ---------------------------------------------------------------------

def merge_warnings(source: Ticket, target: Ticket) -> list[str]:
    """Why merging `source` into `target` deserves a second look (different requester / organisation)."""
    warnings = []
    if source.requester_id != target.requester_id:
        warnings.append(str(_l("依頼者が異なります（%(a)s → %(b)s）。", a=_name(source.requester),
                               b=_name(target.requester))))
    if source.organisation_id != target.organisation_id:
        warnings.append(str(_l("組織が異なります（%(a)s → %(b)s）。", a=_name(source.organisation),
                               b=_name(target.organisation))))
    return warnings


def _name(obj) -> str:
    return obj.name if obj is not None else str(_l("（なし）"))


def ticket_summary(ticket: Ticket) -> dict:
    return {"ref": ticket.ref, "subject": ticket.subject, "requester": _name(ticket.requester),
            "organisation": _name(ticket.organisation), "status": ticket.status,
            "status_label": str(STATUS_LABELS.get(ticket.status, ticket.status))}
