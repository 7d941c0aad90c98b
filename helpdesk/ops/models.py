"""Marks of personal-data actions (APPI): which person or ticket was anonymised, when and why."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.common import UTCDateTime, utcnow
from helpdesk.extensions import db


class Anonymisation(db.Model):
    """One anonymised user (on request) or ticket (by the retention policy); makes both idempotent."""

    __tablename__ = "anonymisations"
    __table_args__ = (
        UniqueConstraint("object_type", "object_id"),
        CheckConstraint("object_type IN ('user', 'ticket')", name="object_type"),
        CheckConstraint("reason IN ('request', 'retention')", name="reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(10))
    object_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(10))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_label: Mapped[str] = mapped_column(String(254))
