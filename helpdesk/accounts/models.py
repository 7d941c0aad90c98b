"""Organisations, users, password-reset tokens and the audit log."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.common import ORG_KINDS, TimestampMixin, UTCDateTime, utcnow
from helpdesk.extensions import db, login_manager


#: PostgreSQL-only: trigram indexes for the user search (name without spaces, e-mail, phone digits).
#: The expressions match helpdesk.accounts.service.search_users exactly.
POSTGRES_DDL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_users_name_trgm ON users USING gin ((replace(lower(name), ' ', '')) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_users_email_trgm ON users USING gin (email gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_users_phone_trgm ON users USING gin ((replace(phone, '-', '')) gin_trgm_ops)",
    # The audit log is append-only: the database itself refuses UPDATE and DELETE of its rows.
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$""",
    """CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
]

#: The same guard for the embedded SQLite database.
SQLITE_DDL = [
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;""",
]


class Organisation(TimestampMixin, db.Model):
    __tablename__ = "organisations"
    __table_args__ = (CheckConstraint(f"kind IN {ORG_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: JIS municipality code (6 digits) or clinic / wholesaler registration number.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Reading of the name in full-width katakana without spaces (caller search by sound).
    name_kana: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), index=True)
    prefecture: Mapped[str | None] = mapped_column(String(10), index=True)
    #: A clinic belongs to the municipality that registered it.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)

    parent: Mapped[Organisation | None] = relationship(remote_side="Organisation.id")

    def __repr__(self) -> str:
        return f"<Organisation {self.code} {self.kind}>"


class User(UserMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("state IN ('invited', 'activated', 'disabled')", name="state"),
        # The activation dashboard's "nobody logged in yet" anti-join probes this index per organisation.
        Index("ix_users_org_last_login", "organisation_id", "last_login_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Login id; always stored lower-cased.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Reading of the name in full-width katakana without spaces (タナカタロウ), see accounts/kana.py.
    name_kana: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: Space-separated subset of helpdesk.common.USER_ROLES.
    roles: Mapped[str] = mapped_column(String(120), default="requester")
    locale: Mapped[str] = mapped_column(String(5), default="ja")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: invited (never logged in) -> activated (first successful login); disabled by an admin.
    state: Mapped[str] = mapped_column(String(12), default="invited", index=True)
    must_change_password: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Bumped to end every session of this user (logout everywhere, password change, disable).
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    #: Created from an unknown e-mail sender or a phone call; an agent should check it.
    needs_review: Mapped[bool] = mapped_column(default=False)

    organisation: Mapped[Organisation | None] = relationship(lazy="joined")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(self.roles.split())

    def has_role(self, *roles: str) -> bool:
        return bool(self.role_set.intersection(roles))

    @property
    def is_staff(self) -> bool:
        return self.has_role("agent", "specialist", "supervisor", "admin")

    @property
    def is_active(self) -> bool:
        return self.state != "disabled"

    def is_locked(self, now: dt.datetime | None = None) -> bool:
        if self.locked_at is None:
            return False
        return self.locked_until is None or self.locked_until > (now or utcnow())

    @property
    def org_kind(self) -> str | None:
        return self.organisation.kind if self.organisation else None

    def __repr__(self) -> str:
        return f"<User {self.email}>"


@login_manager.user_loader
def load_user(token: str) -> User | None:
    user_id, _, version = token.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_version != int(version) or not user.is_active:
        return None
    return user


class PasswordResetToken(db.Model):
    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: SHA-256 of the token sent by mail; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AuditLog(db.Model):
    """Append-only record of who changed what; rows are never updated or deleted."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: e-mail of the actor, "api:<token name>", or "system" for jobs and CLI.
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    summary: Mapped[str | None] = mapped_column(Text)


USER_IMPORT_STATUSES = ("checked", "queued", "running", "done", "failed")


class UserImport(db.Model):
    """One uploaded user file: its dry run, then the confirmed import job's progress and result."""

    __tablename__ = "user_imports"
    __table_args__ = (CheckConstraint(f"status IN {USER_IMPORT_STATUSES!r}", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: random id in URLs (pages and the progress endpoint)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    #: the uploaded bytes, as checked; the job imports these; set to NULL when the job ends
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    encoding: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(16), default="checked", index=True)
    #: the dry run: counts, refused lines, renames, the first rows of each list
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: {org code: [old name, new name]} the admin confirmed (exactly the renames the dry run showed)
    confirmed_renames: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<UserImport {self.public_id} {self.status} {self.done}/{self.total}>"

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return min(99, int(100 * self.done / self.total)) if self.total else 0
