"""TOTP two-factor sign-in for staff: enrolment, verification (no replay), recovery codes, the per-role policy.

Plain service functions (no request): the pages are in `twofactor_views.py`. Secrets follow RFC 6238
(30-second steps, 6 digits, SHA-1) as every authenticator app expects; a code is accepted one step
early or late for clock drift, and never twice (the last accepted step is kept and raised atomically).
Recovery codes are shown once, stored as salted SHA-256 digests, and each works once.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.common import UTCDateTime, utcnow
from helpdesk.extensions import db
from helpdesk.lookup_cache import LookupCache

ISSUER = "VDS Helpdesk"
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
#: Roles the administrator may require two-factor sign-in for (staff and product owners).
ENFORCEABLE_ROLES = ("agent", "specialist", "supervisor", "product_owner", "admin")


class TwoFactorError(ValueError):
    """A refused code or request; the message is shown next to the field."""


class UserTotp(db.Model):
    """A user's TOTP secret; `enabled_at` is set once a first code from the app confirmed it."""

    __tablename__ = "user_totp"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    enabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: The last accepted 30-second step (a code is never accepted twice).
    last_step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecoveryCode(db.Model):
    __tablename__ = "user_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class TwoFactorPolicy(db.Model):
    """The single row (id = 1) of the administrator's setting: roles that must use two-factor sign-in."""

    __tablename__ = "twofactor_policy"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    #: Space-separated subset of ENFORCEABLE_ROLES.
    required_roles: Mapped[str] = mapped_column(String(120), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


_POLICY = LookupCache("twofactor-policy", lambda: (TwoFactorPolicy,))


# --- policy ------------------------------------------------------------------------------------

def required_roles(session) -> frozenset[str]:
    def load():
        row = session.get(TwoFactorPolicy, 1)
        return frozenset((row.required_roles if row else "").split())
    return _POLICY.get(session, "roles", load)


def is_required_for(session, user) -> bool:
    roles = required_roles(session)
    return bool(roles) and bool(user.role_set & roles)


def set_required_roles(session, roles, actor: Actor) -> None:
    wanted = sorted(set(roles))
    unknown = [r for r in wanted if r not in ENFORCEABLE_ROLES]
    if unknown:
        raise TwoFactorError(_l("二段階認証を必須にできるのは担当者の役割だけです。"))
    row = session.get(TwoFactorPolicy, 1)
    before = sorted((row.required_roles if row else "").split())
    if row is None:
        row = TwoFactorPolicy(id=1, required_roles="")
        session.add(row)
    row.required_roles = " ".join(wanted)
    audit.record(session, actor, "security.twofactor_policy", "twofactor_policy", 1,
                 {"before": before, "after": wanted})
    session.commit()


# --- enrolment ---------------------------------------------------------------------------------

def status(session, user_id: int) -> UserTotp | None:
    return session.get(UserTotp, user_id)


def is_enabled(session, user_id: int) -> bool:
    row = session.get(UserTotp, user_id)
    return row is not None and row.enabled_at is not None


def begin_enrolment(session, user) -> str:
    """A new secret for `user` (replacing an unconfirmed one); returns the otpauth:// URI for the QR code."""
    import pyotp

    row = session.get(UserTotp, user.id)
    if row is not None and row.enabled_at is not None:
        raise TwoFactorError(_l("二段階認証は既に有効です。"))
    if row is None:
        row = UserTotp(user_id=user.id, secret=pyotp.random_base32(), last_step=0)
        session.add(row)
    else:
        row.secret = pyotp.random_base32()
    session.commit()
    return provisioning_uri(user, row.secret)


def provisioning_uri(user, secret: str) -> str:
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as an inline SVG element, made on the server (segno, no image request)."""
    import segno

    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#000", light="#fff")


def _normalise(code: str) -> str:
    return unicodedata.normalize("NFKC", code or "").strip().replace(" ", "").replace("-", "").lower()


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    import pyotp

    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _accept_code(session, row: UserTotp, code: str, now: dt.datetime) -> bool:
    code = _normalise(code)
    if len(code) != 6 or not code.isdigit():
        return False
    step = _matching_step(row.secret, code, now)
    if step is None:
        return False
    # Raise last_step only if this step is newer: two requests with one code cannot both pass.
    done = session.execute(update(UserTotp).where(UserTotp.user_id == row.user_id, UserTotp.last_step < step)
                           .values(last_step=step).execution_options(synchronize_session=False))
    return done.rowcount == 1


def confirm_enrolment(session, user, code: str, actor: Actor, now: dt.datetime | None = None) -> list[str]:
    """Enable two-factor sign-in once a code from the app matches; returns the recovery codes (shown once)."""
    row = session.get(UserTotp, user.id)
    if row is None or row.enabled_at is not None:
        raise TwoFactorError(_l("登録をはじめからやり直してください。"))
    if not _accept_code(session, row, code, now or utcnow()):
        session.rollback()
        raise TwoFactorError(_l("確認コードが正しくありません。認証アプリに表示されている6桁の数字を入力してください。"))
    row.enabled_at = now or utcnow()
    codes = _new_recovery_codes(session, user.id)
    audit.record(session, actor, "security.twofactor_enabled", "user", user.id, {})
    session.commit()
    return codes


def disable(session, user, code: str, actor: Actor, now: dt.datetime | None = None) -> None:
    """Turn two-factor sign-in off (a current code or a recovery code is required)."""
    if not verify(session, user.id, code, now=now, audit_actor=None):
        raise TwoFactorError(_l("確認コードが正しくありません。"))
    _remove(session, user.id)
    audit.record(session, actor, "security.twofactor_disabled", "user", user.id, {})
    session.commit()


def reset(session, user, actor: Actor) -> None:
    """An administrator's reset (lost phone and codes): the user enrols again at the next sign-in."""
    _remove(session, user.id)
    audit.record(session, actor, "security.twofactor_reset", "user", user.id, {})
    session.commit()


def _remove(session, user_id: int) -> None:
    row = session.get(UserTotp, user_id)
    if row is not None:
        session.delete(row)
    session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user_id))


# --- recovery codes ----------------------------------------------------------------------------

def _digest(user_id: int, code: str) -> str:
    return hashlib.sha256(f"helpdesk-recovery:{user_id}:{_normalise(code)}".encode()).hexdigest()


def _new_recovery_codes(session, user_id: int) -> list[str]:
    session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user_id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user_id, digest=_digest(user_id, raw)))
    return codes


def regenerate_recovery_codes(session, user, actor: Actor) -> list[str]:
    if not is_enabled(session, user.id):
        raise TwoFactorError(_l("二段階認証が有効ではありません。"))
    codes = _new_recovery_codes(session, user.id)
    audit.record(session, actor, "security.recovery_codes_regenerated", "user", user.id, {})
    session.commit()
    return codes


def recovery_codes_left(session, user_id: int) -> int:
    return len(session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user_id,
                                                             RecoveryCode.used_at.is_(None))).all())


# --- sign-in -----------------------------------------------------------------------------------

def verify(session, user_id: int, code: str, *, now: dt.datetime | None = None,
           audit_actor: Actor | None = None) -> bool:
    """True for a fresh TOTP code or an unused recovery code (which is then used up)."""
    row = session.get(UserTotp, user_id)
    if row is None or row.enabled_at is None:
        return False
    now = now or utcnow()
    if _accept_code(session, row, code, now):
        return True
    normalised = _normalise(code)
    if len(normalised) == 10:
        used = session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.digest == _digest(user_id, normalised),
                   RecoveryCode.used_at.is_(None))
            .values(used_at=now).execution_options(synchronize_session=False))
        if used.rowcount == 1:
            if audit_actor is not None:
                audit.record(session, audit_actor, "security.recovery_code_used", "user", user_id,
                             {"left": recovery_codes_left(session, user_id)})
            return True
    return False
