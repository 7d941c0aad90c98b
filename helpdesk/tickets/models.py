"""Tickets, their replies/notes, events (the timeline), tags, links, attachments, macros."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.common import TimestampMixin, UTCDateTime, utcnow
from helpdesk.extensions import db
from helpdesk.vocabulary import OPEN_STATUSES, TRANSITIONS  # noqa: F401  (the tickets domain imports them from here)
from helpdesk.vocabulary import Channel, Priority, Status, Tier, check_constraint, values

# The codes as plain tuples (query filters, form choices); the vocabulary is helpdesk/vocabulary.py.
STATUSES = values(Status)
PRIORITIES = values(Priority)
CHANNELS = values(Channel)
TIERS = values(Tier)
_OPEN_SQL = f"status IN {tuple(str(s) for s in OPEN_STATUSES)!r}"


class TransitionRefused(ValueError):
    """A status change the ticket does not allow (`before` → `after`)."""

    def __init__(self, before: str, after: str):
        super().__init__(f"{before} -> {after}")
        self.before, self.after = before, after


def format_ref(ticket_id: int) -> str:
    return f"HD-{ticket_id:06d}"


def parse_ref(ref: str) -> int | None:
    """Return the ticket id of 'HD-000123' (case-insensitive, digits only), else None."""
    ref = (ref or "").strip().upper()
    if not ref.startswith("HD-"):
        return None
    digits = ref[3:]
    if not digits.isdigit() or len(digits) > 10:
        return None
    value = int(digits)
    return value if 0 < value < 2**31 else None  # ids are 32-bit integers


def category_label(name_ja: str, name_en: str, locale: str = "ja") -> str:
    """A category's name in the UI language (English only when the UI is in English)."""
    return name_en if locale == "en" else name_ja


class Category(db.Model):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_ja: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def label(self, locale: str = "ja") -> str:
        return category_label(self.name_ja, self.name_en, locale)

    def __repr__(self) -> str:
        return f"<Category {self.code}>"


class Ticket(TimestampMixin, db.Model):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(check_constraint("status", Status), name="status"),
        CheckConstraint(check_constraint("priority", Priority), name="priority"),
        CheckConstraint(check_constraint("channel", Channel), name="channel"),
        CheckConstraint(check_constraint("tier", Tier), name="tier"),
        CheckConstraint("csat_score IS NULL OR (csat_score BETWEEN 1 AND 5)", name="csat"),
        # Queue: default view and keyset pagination (created_at desc, id desc).
        Index("ix_tickets_status_created", "status", "created_at", "id"),
        Index("ix_tickets_org_created", "organisation_id", "created_at", "id"),
        # "Unassigned new" / "mine open" newest first: an ordered index scan, no sort of all matches.
        Index("ix_tickets_assignee_status_created", "assignee_id", "status", "created_at", "id"),
        Index("ix_tickets_category_created", "category_id", "created_at"),
        Index("ix_tickets_role_created", "role", "created_at"),
        Index("ix_tickets_priority_created", "priority", "created_at", "id"),  # search within a priority
        Index("ix_tickets_status_updated", "status", "updated_at", "id"),
        # Open tickets by priority and by due date (queue views): closed tickets are most of the table.
        Index("ix_tickets_open_priority", "priority", "created_at", "id",
              postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL)),
        Index("ix_tickets_open_due", "resolution_due_at", "id",
              postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL)),
        # Searches within "active" / "mine & active" walk these newest first (issue 19).
        Index("ix_tickets_open_created", "created_at", "id",
              postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL)),
        Index("ix_tickets_open_assignee", "assignee_id", "created_at", "id",
              postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Id in the source system for imported tickets; imports are idempotent on it.
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    #: The organisation's kind at creation time (municipality | clinic | wholesaler), kept for reporting.
    role: Mapped[str | None] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10), default="web")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    priority: Mapped[str] = mapped_column(String(2), default="P3")
    status: Mapped[str] = mapped_column(String(12), default="new")
    tier: Mapped[str] = mapped_column(String(3), default="L1")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    #: Slug of the manual article that resolved the ticket, if any.
    resolved_by_article: Mapped[str | None] = mapped_column(String(120))

    first_response_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolution_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When the ticket went pending (SLA clock paused); None while the clock runs.
    sla_paused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: ok | at_risk | breached, maintained by the SLA sweep.
    sla_state: Mapped[str | None] = mapped_column(String(10))

    call_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    call_ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Phone handle time in seconds.
    handle_seconds: Mapped[int | None] = mapped_column(Integer)
    #: First-contact resolution: resolved during the call that opened it.
    resolved_on_first_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    csat_score: Mapped[int | None] = mapped_column(Integer)
    csat_comment: Mapped[str | None] = mapped_column(Text)
    #: Structured context from the in-app help button (screen id, error code, browser…).
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: NFKC-normalised, lower-cased subject + body + replies, maintained by the service for search.
    search_text: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)

    requester = relationship("User", foreign_keys=[requester_id], lazy="joined")
    assignee = relationship("User", foreign_keys=[assignee_id], lazy="joined")
    organisation = relationship("Organisation", lazy="joined")
    category = relationship("Category", lazy="joined")
    comments: Mapped[list[Comment]] = relationship(back_populates="ticket", order_by="Comment.id")
    tags: Mapped[list[TicketTag]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    __mapper_args__ = {"version_id_col": version}

    @property
    def ref(self) -> str:
        return format_ref(self.id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def can_move_to(self, status: str) -> bool:
        return status in TRANSITIONS.get(self.status, frozenset())

    def move_to(self, status: str, at: dt.datetime) -> str:
        """Change the status if the current one allows it (else TransitionRefused); returns the old status.

        Keeps the resolved/closed timestamps true: set on arrival, resolved_at cleared on reopening."""
        if not self.can_move_to(status):
            raise TransitionRefused(self.status, status)
        before = self.status
        self.status = status
        if status == Status.RESOLVED:
            self.resolved_at = at
        elif status == Status.CLOSED:
            self.closed_at = at
        elif before == Status.RESOLVED:
            self.resolved_at = None
        return before

    @property
    def tag_names(self) -> list[str]:
        return sorted(t.tag for t in self.tags)

    def __repr__(self) -> str:
        return f"<Ticket {self.ref if self.id else '?'} {self.status}>"


class TicketTag(db.Model):
    __tablename__ = "ticket_tags"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class Comment(db.Model):
    """A public reply (the requester sees it) or an internal note (staff only)."""

    __tablename__ = "comments"
    __table_args__ = (
        # The monthly report's time-tracking totals read only the comments that carry minutes.
        Index("ix_comments_timelog", "created_at", postgresql_where=text("minutes IS NOT NULL"),
              sqlite_where=text("minutes IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Where it came from: web, email, phone, api.
    via: Mapped[str] = mapped_column(String(10), default="web")
    #: Message-ID of the e-mail it came from or was sent as (reply threading).
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Minutes of work an agent logged with this reply or note (time tracking, tickets/timelog.py).
    minutes: Mapped[int | None] = mapped_column(Integer, CheckConstraint("minutes BETWEEN 1 AND 1440",
                                                                          name="minutes"))

    ticket: Mapped[Ticket] = relationship(back_populates="comments")
    author = relationship("User", lazy="joined")


class TicketEvent(db.Model):
    """One change on a ticket, for the timeline; never edited or deleted."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(String(254))
    #: created, status, priority, category, assignee, tier, escalation, merge, link, article, reply, note, tag, csat…
    kind: Mapped[str] = mapped_column(String(30))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    actor = relationship("User", lazy="joined")


class TicketLink(db.Model):
    __tablename__ = "ticket_links"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, index=True)


class TicketArticle(db.Model):
    """A manual article linked to a ticket (sent in a reply or marked as the resolution)."""

    __tablename__ = "ticket_articles"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), primary_key=True, index=True)
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    linked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_by: Mapped[bool] = mapped_column(Boolean, default=False)


class Attachment(db.Model):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="SET NULL"))
    #: Original file name, sanitised; the file on disk has a random name.
    filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FormNonce(db.Model):
    """One-time token of a ticket form: a second submission of the same form creates nothing."""

    __tablename__ = "form_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Macro(TimestampMixin, db.Model):
    """A canned response; placeholders like {requester_name} and {ref} are filled in on use."""

    __tablename__ = "macros"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    set_status: Mapped[str | None] = mapped_column(String(12))
    set_category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SavedView(db.Model):
    """A named queue filter; user_id None means shared with every agent."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    #: The queue's query string, e.g. "status=open&priority=P1".
    query: Mapped[str] = mapped_column(String(1000))
    position: Mapped[int] = mapped_column(Integer, default=0)


class TicketSeen(db.Model):
    """When an agent last opened a ticket: customer activity after it marks the ticket unread."""

    __tablename__ = "ticket_seen"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AgentShift(db.Model):
    """Whether an agent is on shift (available for automatic assignment) — absent agents never get one."""

    __tablename__ = "agent_shifts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    on_shift: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AssignmentRule(TimestampMixin, db.Model):
    """Automatic assignment of new tickets of a category and/or requester role to a group of agents."""

    __tablename__ = "assignment_rules"
    __table_args__ = (CheckConstraint("mode IN ('round_robin', 'least_loaded')", name="mode"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: None = any category / any role.
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    role: Mapped[str | None] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(20), default="round_robin")
    #: Comma-separated user ids of the agents in the group.
    agent_ids: Mapped[str] = mapped_column(String(1000), default="")
    #: The agent who got the previous ticket (round robin continues after them).
    last_agent_id: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
