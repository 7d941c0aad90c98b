"""SLA policies, the desk calendar settings (hours, closed days) and each ticket's SLA clock."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.common import TimestampMixin, UTCDateTime, utcnow
from helpdesk.extensions import db


class SlaPolicy(TimestampMixin, db.Model):
    """Targets for one priority; a row with a role and/or category overrides the plain priority row."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("priority", "organisation_id", "role", "category_code", name="uq_sla_policies_scope"),
        CheckConstraint("priority IN ('P1', 'P2', 'P3', 'P4')", name="priority"),
        CheckConstraint("first_response_minutes > 0 AND resolution_minutes > 0", name="targets"),
        CheckConstraint("next_update_minutes IS NULL OR next_update_minutes > 0", name="next_update"),
        CheckConstraint("at_risk_percent BETWEEN 1 AND 99", name="at_risk"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    priority: Mapped[str] = mapped_column(String(2))
    #: A client organisation's own targets: chosen before any role / category / priority-only policy.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"),
                                                        index=True)
    #: municipality | clinic | wholesaler; None = every role.
    role: Mapped[str | None] = mapped_column(String(20))
    #: A ticket category code; None = every category.
    category_code: Mapped[str | None] = mapped_column(String(40))
    #: Targets in business minutes of the desk calendar.
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    #: Longest time (business minutes) from an agent's public reply to the next one; None = not tracked.
    next_update_minutes: Mapped[int | None] = mapped_column(Integer)
    #: Share of a target (elapsed) at which the ticket is shown and notified as at risk.
    at_risk_percent: Mapped[int] = mapped_column(Integer, default=75)
    #: On breach, move the ticket one tier up (L1 → L2) automatically.
    auto_escalate: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    organisation = relationship("Organisation")

    def __repr__(self) -> str:
        return f"<SlaPolicy {self.priority} {self.role or '*'} {self.category_code or '*'}>"


class ClosedDay(db.Model):
    """A day the desk is closed besides weekends, public holidays and the year-end closure."""

    __tablename__ = "sla_closed_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, unique=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<ClosedDay {self.day}>"


class DeskSettings(db.Model):
    """The single row of desk-calendar settings (id = 1); absent means the built-in defaults."""

    __tablename__ = "sla_desk_settings"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    #: {"0": [["09:00", "18:00"]], …, "5": [["09:00", "17:00"]]}: weekday (0 = Monday) → intervals.
    hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Close on Japanese public holidays (jpholiday).
    public_holidays: Mapped[bool] = mapped_column(Boolean, default=True)
    year_end_closure: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Bumped on every change of hours or closed days, so cached calendars are rebuilt.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SlaClock(db.Model):
    """The SLA bookkeeping of one ticket: targets taken from its policy, pauses, thresholds, notices."""

    __tablename__ = "sla_clocks"
    __table_args__ = (
        # The sweep looks for running clocks whose at-risk time has come.
        Index("ix_sla_clocks_risk", "resolution_risk_at", postgresql_where=text("stopped_at IS NULL"),
              sqlite_where=text("stopped_at IS NULL")),
    )

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    #: When the clock started (the ticket's creation).
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    at_risk_percent: Mapped[int] = mapped_column(Integer, default=75)
    auto_escalate: Mapped[bool] = mapped_column(Boolean, default=False)
    next_update_minutes: Mapped[int | None] = mapped_column(Integer)
    #: Next agent update due (last agent public reply + target, restarted on leaving pending); None = none due.
    next_update_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    next_update_risk_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Business minutes spent pending on the requester so far (due dates move by this much).
    paused_minutes: Mapped[int] = mapped_column(Integer, default=0)
    first_response_risk_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolution_risk_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Set when the ticket is resolved or closed (the sweep ignores stopped clocks).
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    at_risk_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    breached_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<SlaClock ticket={self.ticket_id} paused={self.paused_minutes}>"
