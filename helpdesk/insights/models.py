"""Recurring groups, problems (backlog items) and the daily trend rollup."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Integer, LargeBinary,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.common import TimestampMixin, UTCDateTime, utcnow
from helpdesk.extensions import db

TRENDS = ("rising", "stable", "falling")
PROBLEM_STATUSES = ("candidate", "accepted", "sent", "fixed", "verified")
#: Allowed problem transitions; anything else raises InvalidTransition in the service.
#: "sent" is reached only by sending to the development tracker (tracker.send_problem), never by hand.
PROBLEM_TRANSITIONS: dict[str, frozenset[str]] = {
    "candidate": frozenset({"accepted"}),
    "accepted": frozenset({"sent", "candidate"}),
    "sent": frozenset({"fixed", "accepted"}),
    "fixed": frozenset({"verified", "accepted"}),  # back to accepted: the fix did not hold; send again
    "verified": frozenset({"accepted"}),
}
#: Statuses only the system sets (not offered in the manual transition form).
SYSTEM_ONLY_STATUSES = frozenset({"sent"})
ROLLUP_DIMENSIONS = ("all", "category", "role", "prefecture", "channel", "org")


class RecurringRun(db.Model):
    """One full clustering run; keeps the fitted model so new tickets can be assigned between runs."""

    __tablename__ = "recurring_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    tickets: Mapped[int] = mapped_column(Integer, default=0)
    groups: Mapped[int] = mapped_column(Integer, default=0)
    #: Pickled clustering.Model + group centroids, written by this app only (never from user input).
    model_blob: Mapped[bytes | None] = mapped_column(LargeBinary)


class RecurringGroup(TimestampMixin, db.Model):
    __tablename__ = "recurring_groups"
    __table_args__ = (CheckConstraint(f"trend IN {TRENDS!r}", name="trend"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    top_terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    size: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_seen: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Tickets per organisation kind, e.g. {"clinic": 12, "municipality": 3}.
    roles: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    trend: Mapped[str] = mapped_column(String(8), default="stable")
    #: Weekly counts (oldest first) behind the trend, with the week starts.
    weekly: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    representative_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    #: False once a later full run no longer finds this group.
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    #: Position of the group's centroid in the run's model (for incremental assignment).
    run_id: Mapped[int | None] = mapped_column(ForeignKey("recurring_runs.id", ondelete="SET NULL"))
    centroid_index: Mapped[int | None] = mapped_column(Integer)

    representative = relationship("Ticket", lazy="joined")

    def __repr__(self) -> str:
        return f"<RecurringGroup {self.id} {self.label!r} n={self.size}>"


class RecurringMember(db.Model):
    __tablename__ = "recurring_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("recurring_groups.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, index=True)
    #: full (clustering run) | incremental (assigned to the nearest group on arrival)
    source: Mapped[str] = mapped_column(String(12), default="full")
    similarity: Mapped[float | None] = mapped_column(Float)


class Problem(TimestampMixin, db.Model):
    """A backlog item for the development team, usually promoted from a recurring group."""

    __tablename__ = "problems"
    __table_args__ = (CheckConstraint(f"status IN {PROBLEM_STATUSES!r}", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="candidate", index=True)
    #: Issue key / URL returned by the development tracker.
    external_ref: Mapped[str | None] = mapped_column(String(100))
    external_url: Mapped[str | None] = mapped_column(String(500))
    #: Release date of the fix (Tokyo date); impact compares weeks before and after it.
    fixed_on: Mapped[dt.date | None] = mapped_column(Date)
    fixed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Canned reply agents send on matching tickets while the problem is open.
    workaround: Mapped[str] = mapped_column(Text, default="")
    source_group_id: Mapped[int | None] = mapped_column(ForeignKey("recurring_groups.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Set when matching tickets come back after the fix.
    reappeared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)

    source_group = relationship("RecurringGroup", lazy="joined")
    links: Mapped[list[ProblemTicket]] = relationship(back_populates="problem", cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}

    @property
    def ref(self) -> str:
        return f"PRB-{self.id:05d}"

    @property
    def is_open(self) -> bool:
        return self.status in ("candidate", "accepted", "sent")

    def __repr__(self) -> str:
        return f"<Problem {self.id} {self.status}>"


class ProblemTicket(db.Model):
    __tablename__ = "problem_tickets"

    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, index=True)
    #: group (promoted with the group) | auto (matched on arrival) | manual (linked by an agent)
    source: Mapped[str] = mapped_column(String(10), default="manual")
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    linked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    problem: Mapped[Problem] = relationship(back_populates="links")
    ticket = relationship("Ticket", lazy="joined")


class TrendRollup(db.Model):
    """Tickets per Tokyo day and dimension value, rebuilt by `refresh_rollups` (reports read this)."""

    __tablename__ = "trend_rollups"
    __table_args__ = (
        UniqueConstraint("day", "dimension", "value", name="uq_trend_rollups_key"),
        CheckConstraint(f"dimension IN {ROLLUP_DIMENSIONS!r}", name="dimension"),
        Index("ix_trend_rollups_dim_day", "dimension", "day"),
        Index("ix_trend_rollups_dim_week", "dimension", "week", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    #: Monday of the day's week (weekly reports group on it in SQL).
    week: Mapped[dt.date] = mapped_column(Date)
    dimension: Mapped[str] = mapped_column(String(12))
    value: Mapped[str] = mapped_column(String(64), default="")
    #: Tickets created that day.
    created: Mapped[int] = mapped_column(Integer, default=0)
    #: Tickets resolved (or closed) that day.
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    #: Of the tickets created that day: how many are resolved, and how many on first contact.
    done: Mapped[int] = mapped_column(Integer, default=0)
    first_contact: Mapped[int] = mapped_column(Integer, default=0)


class RollupState(db.Model):
    __tablename__ = "trend_rollup_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Newest ticket change included in the rollup (staleness check).
    tickets_updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    tickets: Mapped[int] = mapped_column(Integer, default=0)


class PreparedText(db.Model):
    """A ticket's cleaned text and tokens, cached so the nightly regrouping does not re-tokenise everything."""

    __tablename__ = "insight_texts"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    #: sha1 of the preparation version + subject + body; a changed ticket is prepared again.
    digest: Mapped[str] = mapped_column(String(40))
    tokens: Mapped[str] = mapped_column(Text, default="")
    cleaned: Mapped[str] = mapped_column(Text, default="")
    prepared_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
