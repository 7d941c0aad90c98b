"""Automation rules (triggers and time-based automations) and the record of every time one acted."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.common import TimestampMixin, UTCDateTime, utcnow
from helpdesk.extensions import db

#: When a rule is looked at: a ticket is created, changed, the requester replies, or every N minutes.
TRIGGERS = ("created", "updated", "reply", "timed")


class AutomationRule(TimestampMixin, db.Model):
    """A supervisor's rule: when <trigger> and every condition holds → run the actions, in order."""

    __tablename__ = "automation_rules"
    __table_args__ = (
        CheckConstraint(f"trigger_on IN {TRIGGERS!r}", name="trigger_on"),
        CheckConstraint("interval_minutes IS NULL OR interval_minutes BETWEEN 5 AND 10080", name="interval"),
        CheckConstraint("trigger_on <> 'timed' OR interval_minutes IS NOT NULL", name="timed_interval"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    trigger_on: Mapped[str] = mapped_column(String(10))
    #: Rules of one trigger run in ascending position (ties by id); the list page moves them up and down.
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: [{"field": "priority", "op": "is", "value": "P1"}, …] — all must hold (see service.CONDITION_FIELDS).
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: [{"kind": "set_priority", "value": "P1"}, {"kind": "send_mail", "value": "requester",
    #:   "subject": "…", "text": "…"}, …] — run in this order (see service.ACTION_KINDS).
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: Time-based rules only: run every N minutes (by `helpdesk automation run-timed` from cron or RQ).
    interval_minutes: Mapped[int | None] = mapped_column(Integer)
    #: Time-based rules only: when the last pass over this rule finished.
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"<AutomationRule {self.id} {self.trigger_on} {self.name!r}>"


class AutomationRun(db.Model):
    """One application of a rule to a ticket. The unique key is the loop and idempotency guard: a rule
    acts once per ticket per triggering occurrence ('created', 'e<event id>', 'c<comment id>', 'timed')."""

    __tablename__ = "automation_runs"
    __table_args__ = (
        UniqueConstraint("rule_id", "ticket_id", "trigger_key", name="uq_automation_runs_rule_ticket_key"),
        Index("ix_automation_runs_rule_at", "rule_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    trigger_key: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: What each action did: [{"kind": …, "done": true|false, "text": "…"}].
    outcome: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"<AutomationRun rule={self.rule_id} ticket={self.ticket_id} {self.trigger_key}>"
