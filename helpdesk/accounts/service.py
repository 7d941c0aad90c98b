"""Accounts: authentication with lockout, password changes and resets, unlock, organisations."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app, has_app_context
from sqlalchemy import select, update

from helpdesk import audit
from helpdesk.accounts.models import Organisation, PasswordResetToken, User
from helpdesk.accounts.passwords import hash_password, policy_errors, verify_password
from helpdesk.audit import Actor
from helpdesk.common import utcnow

#: One message for every failed login, whether or not the account exists or is locked.
LOGIN_FAILED = "ログインIDまたはパスワードが正しくないか、アカウントがロックされています。"


class AccountError(Exception):
    pass


def _cfg(key: str, default):
    return current_app.config.get(key, default) if has_app_context() else default


def find_user_by_email(session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == (email or "").strip().lower()))


def authenticate(session, email: str, password: str, ip: str | None = None) -> User | None:
    """Return the user if the password is right and the account usable; count failures and lock."""
    user = find_user_by_email(session, email)
    now = utcnow()
    if user is None:
        verify_password(None, password)  # same work as a real check
        audit.record(session, Actor(None, (email or "")[:254], ip), "login.failed", "user", None,
                     {"reason": "unknown"})
        session.commit()
        return None
    actor = Actor(user.id, user.email, ip)
    if user.is_locked(now) or not user.is_active:
        verify_password(user.password_hash, password)
        audit.record(session, actor, "login.refused", "user", user.id,
                     {"reason": "locked" if user.is_locked(now) else "disabled"})
        session.commit()
        return None
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        detail = {"failed_logins": user.failed_logins}
        if user.failed_logins >= _cfg("LOGIN_MAX_FAILURES", 5):
            user.locked_at = now
            user.locked_until = now + dt.timedelta(minutes=_cfg("LOGIN_LOCK_MINUTES", 30))
            detail["locked_until"] = user.locked_until.isoformat()
            audit.record(session, actor, "user.locked", "user", user.id, detail)
        audit.record(session, actor, "login.failed", "user", user.id, detail)
        session.commit()
        return None
    if user.locked_at is not None:  # a lock that has expired
        user.locked_at = user.locked_until = None
    user.failed_logins = 0
    user.last_login_at = now
    if user.state == "invited":
        user.state, user.activated_at = "activated", now
    audit.record(session, actor, "login.succeeded", "user", user.id)
    session.commit()
    return user


def set_password(session, user_id: int, new_password: str, actor: Actor, *, current_password: str | None = None,
                 require_current: bool = False) -> User:
    """Change a password, end the user's other sessions, clear the forced-change flag."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("利用者が見つかりません。")
    if require_current and not verify_password(user.password_hash, current_password or ""):
        raise AccountError("現在のパスワードが正しくありません。")
    errors = policy_errors(new_password, user.email)
    if errors:
        raise AccountError(" ".join(errors))
    if user.password_hash and verify_password(user.password_hash, new_password):
        raise AccountError("今までと同じパスワードは使えません。")
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.session_version += 1
    user.failed_logins = 0
    user.locked_at = user.locked_until = None
    audit.record(session, actor, "user.password_changed", "user", user.id)
    session.commit()
    return user


def unlock(session, user_id: int, actor: Actor) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("利用者が見つかりません。")
    before = user.locked_until.isoformat() if user.locked_until else None
    user.locked_at = user.locked_until = None
    user.failed_logins = 0
    audit.record(session, actor, "user.unlocked", "user", user.id, {"locked_until": before})
    session.commit()
    return user


def set_disabled(session, user_id: int, disabled: bool, actor: Actor) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("利用者が見つかりません。")
    before = user.state
    if disabled:
        user.state = "disabled"
        user.session_version += 1  # ends every session of the user
    elif user.state == "disabled":
        user.state = "activated" if user.activated_at else "invited"
    audit.record(session, actor, "user.disabled" if disabled else "user.enabled", "user", user.id,
                 {"before": before, "after": user.state})
    session.commit()
    return user


def end_sessions(session, user_id: int, actor: Actor) -> None:
    user = session.get(User, user_id)
    if user is not None:
        user.session_version += 1
        audit.record(session, actor, "user.sessions_ended", "user", user.id)
        session.commit()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_password_reset(session, email: str, actor: Actor, *, base_url: str | None = None) -> bool:
    """Queue a reset mail with a single-use, expiring link; returns False (silently) for unknown emails."""
    from helpdesk.notify.service import queue_email

    user = find_user_by_email(session, email)
    if user is None or not user.is_active:
        return False
    token = secrets.token_urlsafe(32)
    hours = _cfg("PASSWORD_RESET_HOURS", 24)
    # Older unused links stop working when a new one is issued.
    session.execute(update(PasswordResetToken).where(PasswordResetToken.user_id == user.id,
                                                    PasswordResetToken.used_at.is_(None))
                    .values(used_at=utcnow()))
    session.add(PasswordResetToken(user_id=user.id, token_hash=_token_hash(token),
                                   expires_at=utcnow() + dt.timedelta(hours=hours)))
    base = (base_url or _cfg("BASE_URL", "http://127.0.0.1:5000")).rstrip("/")
    link = f"{base}/password/reset/{token}"
    if user.locale == "en":
        subject = "[VDS Help Desk] Password reset"
        body = (f"{user.name},\n\nOpen this link within {hours} hours to set a new password:\n{link}\n\n"
                "The link works once. If you did not ask for it, ignore this mail.\n")
    else:
        subject = "【VDSヘルプデスク】パスワード再設定のご案内"
        body = (f"{user.name} 様\n\n次のリンクを{hours}時間以内に開き、新しいパスワードを設定してください。\n{link}\n\n"
                "このリンクは1回だけ使えます。お心当たりがない場合は、このメールを破棄してください。\n")
    queue_email(session, to=user.email, subject=subject, body_text=body, purpose="account.password_reset")
    audit.record(session, actor, "user.password_reset_requested", "user", user.id)
    session.commit()
    return True


def reset_password_with_token(session, token: str, new_password: str, ip: str | None = None) -> User:
    row = session.scalar(select(PasswordResetToken).where(PasswordResetToken.token_hash == _token_hash(token or "")))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise AccountError("このリンクは無効か、有効期限が切れています。もう一度パスワード再設定を申し込んでください。")
    user = session.get(User, row.user_id)
    errors = policy_errors(new_password, user.email)
    if errors:
        raise AccountError(" ".join(errors))
    row.used_at = utcnow()
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.session_version += 1
    user.failed_logins = 0
    user.locked_at = user.locked_until = None
    audit.record(session, Actor(user.id, user.email, ip), "user.password_reset", "user", user.id)
    session.commit()
    return user


def reset_token_valid(session, token: str) -> bool:
    row = session.scalar(select(PasswordResetToken).where(PasswordResetToken.token_hash == _token_hash(token or "")))
    return row is not None and row.used_at is None and row.expires_at > utcnow()


def create_user(session, *, email: str, name: str, organisation_id: int | None, roles: str = "requester",
                password: str | None = None, actor: Actor, locale: str = "ja", phone: str | None = None,
                must_change_password: bool = True, commit: bool = True) -> User:
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise AccountError("メールアドレスの形式が正しくありません。")
    if find_user_by_email(session, email):
        raise AccountError("このメールアドレスは既に登録されています。")
    user = User(email=email, name=name.strip(), organisation_id=organisation_id, roles=roles, locale=locale,
                phone=phone, password_hash=hash_password(password) if password else None,
                must_change_password=must_change_password)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", "user", user.id, {"email": email, "roles": roles})
    if commit:
        session.commit()
    return user


def get_or_create_organisation(session, *, code: str, name: str, kind: str, prefecture: str | None = None,
                               parent_id: int | None = None) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        org = Organisation(code=code, name=name, kind=kind, prefecture=prefecture, parent_id=parent_id)
        session.add(org)
        session.flush()
    return org
