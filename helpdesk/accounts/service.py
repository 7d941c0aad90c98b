"""Accounts: authentication with lockout, password changes and resets, unlock, organisations."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, or_, select, update

from helpdesk import audit
from helpdesk.accounts.models import Organisation, PasswordResetToken, User
from helpdesk.accounts.passwords import hash_password, policy_errors, verify_password
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.i18n import lazy_join
from helpdesk.routing import absolute
from helpdesk.accounts.audit_words import ACTIONS, CSV_HEADER, action_label, detail_lines, object_label
from helpdesk.accounts.models import AuditLog
from helpdesk.common import TOKYO, to_tokyo
from helpdesk.notify.service import queue_email
from helpdesk.text import clean_input

#: One message for every failed login, whether or not the account exists or is locked.
LOGIN_FAILED = "ログインIDまたはパスワードが正しくないか、アカウントがロックされています。"


class AccountError(Exception):
    """A refused account change; `field` names the form input the message belongs next to (if any)."""

    def __init__(self, message, field: str | None = None):
        super().__init__(message)
        self.field = field


def _cfg(key: str, default):
    return current_app.config.get(key, default) if has_app_context() else default


def find_user_by_email(session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == (email or "").strip().lower()))


def authenticate(session, email: str, password: str, ip: str | None = None) -> User | None:
    """Return the user if the password is right and the account usable; count failures and lock.

    Every password check is paid for first: `_claim_attempt` takes one of the account's
    LOGIN_MAX_FAILURES attempts with one atomic UPDATE (committed before the slow hash), so however
    many requests race, no more than that many passwords are ever checked before the lock.
    """
    user = find_user_by_email(session, email)
    now = utcnow()
    if user is None:
        verify_password(None, password)  # same work as a real check
        audit.record(session, Actor(None, (email or "")[:254], ip), "login.failed", "user", None,
                     {"reason": "unknown"})
        session.commit()
        return None
    actor = Actor(user.id, user.email, ip)
    limit = _cfg("LOGIN_MAX_FAILURES", 5)
    attempt = _claim_attempt(session, user.id, now, limit)
    if attempt is None:  # locked, disabled, or every attempt of this window already taken
        verify_password(None, password)  # same work, but the account's password is not checked
        session.refresh(user)
        reason = "disabled" if not user.is_active else "locked"
        audit.record(session, actor, "login.refused", "user", user.id, {"reason": reason})
        session.commit()
        return None
    if not verify_password(user.password_hash, password):
        detail = {"failed_logins": attempt}
        if attempt >= limit and _lock(session, user.id, now, limit):
            detail["locked_until"] = (now + dt.timedelta(minutes=_cfg("LOGIN_LOCK_MINUTES", 30))).isoformat()
            audit.record(session, actor, "user.locked", "user", user.id, detail)
        audit.record(session, actor, "login.failed", "user", user.id, detail)
        session.commit()
        session.refresh(user)
        return None
    session.execute(update(User).where(User.id == user.id)
                    .values(failed_logins=0, locked_at=None, locked_until=None, last_login_at=now))
    if user.state == "invited":
        session.execute(update(User).where(User.id == user.id, User.state == "invited")
                        .values(state="activated", activated_at=now))
    audit.record(session, actor, "login.succeeded", "user", user.id)
    session.commit()
    session.refresh(user)
    return user


def _claim_attempt(session, user_id: int, now: dt.datetime, limit: int) -> int | None:
    """Take one password attempt of the account, atomically; its number (1..limit), or None.

    One UPDATE … SET failed_logins = failed_logins + 1 … RETURNING: the row lock makes racing
    requests take turns, and each re-reads the counter, so at most `limit` of them get a number.
    A lock that has expired opens a fresh window. Committed at once, before the password hash
    is computed, so the row is not held during it.
    """
    expired = and_(User.locked_at.is_not(None), User.locked_until.is_not(None), User.locked_until <= now)
    attempt = session.scalar(
        update(User)
        .where(User.id == user_id, User.state != "disabled",
               or_(and_(User.locked_at.is_(None), User.failed_logins < limit), expired))
        .values(failed_logins=case((User.locked_at.is_not(None), 1), else_=User.failed_logins + 1),
                locked_at=None, locked_until=None)
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False))
    session.commit()
    return attempt


def _lock(session, user_id: int, now: dt.datetime, limit: int) -> bool:
    """Lock after the last wrong attempt, unless a right password reset the counter meanwhile."""
    return session.scalar(
        update(User)
        .where(User.id == user_id, User.locked_at.is_(None), User.failed_logins >= limit)
        .values(locked_at=now, locked_until=now + dt.timedelta(minutes=_cfg("LOGIN_LOCK_MINUTES", 30)))
        .returning(User.id)
        .execution_options(synchronize_session=False)) is not None


def set_password(session, user_id: int, new_password: str, actor: Actor, *, current_password: str | None = None,
                 require_current: bool = False) -> User:
    """Change a password, end the user's other sessions, clear the forced-change flag."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError(_l("利用者が見つかりません。"))
    if require_current and not verify_password(user.password_hash, current_password or ""):
        raise AccountError(_l("現在のパスワードが正しくありません。"), field="current_password")
    errors = policy_errors(new_password, user.email)
    if errors:
        raise AccountError(lazy_join(" ", errors))
    if user.password_hash and verify_password(user.password_hash, new_password):
        raise AccountError(_l("今までと同じパスワードは使えません。"))
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
        raise AccountError(_l("利用者が見つかりません。"))
    before = user.locked_until.isoformat() if user.locked_until else None
    user.locked_at = user.locked_until = None
    user.failed_logins = 0
    audit.record(session, actor, "user.unlocked", "user", user.id, {"locked_until": before})
    session.commit()
    return user


def set_disabled(session, user_id: int, disabled: bool, actor: Actor) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise AccountError(_l("利用者が見つかりません。"))
    before = user.state
    if disabled:
        user.state = "disabled"
        user.session_version += 1  # ends every session of the user
    elif user.state == "disabled":
        user.state = "activated" if (user.activated_at or user.last_login_at) else "invited"
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


def request_password_reset(session, email: str, actor: Actor) -> bool:
    """Queue a reset mail with a single-use, expiring link; returns False (silently) for unknown emails.

    The link is built from BASE_URL only: never from the request's Host header (host poisoning).
    """
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
    link = absolute(f"/password/reset/{token}")
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
        raise AccountError(_l("このリンクは無効か、有効期限が切れています。もう一度パスワード再設定を申し込んでください。"))
    user = session.get(User, row.user_id)
    errors = policy_errors(new_password, user.email)
    if errors:
        raise AccountError(lazy_join(" ", errors))
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
        raise AccountError(_l("メールアドレスの形式が正しくありません。"), field="email")
    if find_user_by_email(session, email):
        raise AccountError(_l("このメールアドレスは既に登録されています。"), field="email")
    user = User(email=email, name=name.strip(), organisation_id=organisation_id, roles=roles, locale=locale,
                phone=phone, password_hash=hash_password(password) if password else None,
                must_change_password=must_change_password)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", "user", user.id, {"email": email, "roles": roles})
    if commit:
        session.commit()
    return user


# --------------------------------------------------------------------------- activation dashboard

import csv as _csv  # noqa: E402
import io as _io  # noqa: E402
from dataclasses import dataclass as _dataclass  # noqa: E402

from sqlalchemy import and_, case, func, literal_column, or_  # noqa: E402

from helpdesk.common import ORG_KINDS, PREFECTURES, USER_ROLES, csv_safe  # noqa: E402
from helpdesk.text import normalize  # noqa: E402

PAGE_SIZE = 50


def _state_columns(now: dt.datetime):
    locked = and_(User.locked_at.is_not(None), or_(User.locked_until.is_(None), User.locked_until > now))
    return (
        func.count(User.id).label("total"),
        func.sum(case((User.state == "invited", 1), else_=0)).label("invited"),
        func.sum(case((User.state == "activated", 1), else_=0)).label("activated"),
        func.sum(case((locked, 1), else_=0)).label("locked"),
        func.sum(case((User.state == "disabled", 1), else_=0)).label("disabled"),
    )


_COUNTS = ("total", "invited", "activated", "locked", "disabled")


def activation_stats(session, now: dt.datetime | None = None) -> dict:
    """Invited / activated / locked / disabled counts of organisation users, by kind and by prefecture.

    One GROUP BY (kind, prefecture) over users joined to organisations; the two views are summed from it.
    """
    now = now or utcnow()
    per_org = (select(User.organisation_id.label("org_id"), *_state_columns(now))
               .where(User.organisation_id.is_not(None)).group_by(User.organisation_id).subquery())
    query = (select(Organisation.kind, Organisation.prefecture,
                    *[func.sum(getattr(per_org.c, k)).label(k) for k in _COUNTS])
             .join(per_org, per_org.c.org_id == Organisation.id)
             .group_by(Organisation.kind, Organisation.prefecture))
    by_kind: dict[str, dict] = {k: {"key": k, **dict.fromkeys(_COUNTS, 0)} for k in ORG_KINDS}
    by_pref: dict[str | None, dict] = {}
    for row in session.execute(query):
        for bucket in (by_kind.setdefault(row.kind, {"key": row.kind, **dict.fromkeys(_COUNTS, 0)}),
                       by_pref.setdefault(row.prefecture, {"key": row.prefecture, **dict.fromkeys(_COUNTS, 0)})):
            for k in _COUNTS:
                bucket[k] += int(getattr(row, k) or 0)
    order = {p: i for i, p in enumerate(PREFECTURES)}
    kinds = [by_kind[k] for k in ORG_KINDS]
    prefs = sorted(by_pref.values(), key=lambda r: order.get(r["key"], 99))
    totals = {k: sum(r[k] for r in kinds) for k in _COUNTS}
    for r in kinds + prefs + [totals]:
        r["rate"] = r["activated"] / r["total"] if r["total"] else 0.0
    return {"by_kind": kinds, "by_prefecture": prefs, "totals": totals}


@_dataclass
class OutreachFilter:
    kind: str = ""
    prefecture: str = ""
    q: str = ""

    @classmethod
    def parse(cls, args) -> tuple["OutreachFilter", dict[str, str]]:
        """Build a filter from request args; unknown values are dropped and reported (never a 500)."""
        errors: dict[str, str] = {}
        kind = (args.get("kind") or "").strip()
        if kind and kind not in ORG_KINDS:
            errors["kind"] = _l("組織区分の指定が正しくないため、外しました。")
            kind = ""
        prefecture = (args.get("prefecture") or "").strip()
        if prefecture and prefecture not in PREFECTURES:
            errors["prefecture"] = _l("都道府県の指定が正しくないため、外しました。")
            prefecture = ""
        q = normalize(args.get("q") or "")
        if len(q) > 100:
            errors["q"] = _l("検索語は100文字までにしてください。")
            q = q[:100]
        return cls(kind, prefecture, q), errors

    def as_args(self) -> dict[str, str]:
        return {k: v for k, v in (("kind", self.kind), ("prefecture", self.prefecture), ("q", self.q)) if v}


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _squeezed(column):
    """lower(column) without spaces; literal constants so PostgreSQL can match the trigram expression index."""
    return func.replace(func.lower(column), literal_column("' '"), literal_column("''"))


def _org_match(term: str):
    like = _like(term)
    return or_(func.lower(Organisation.code).like(like, escape="\\"),
               _squeezed(Organisation.name).like(like, escape="\\"))


def _outreach_query(flt: OutreachFilter):
    """Organisations with at least one usable account and nobody who ever logged in (anti-join on an index)."""
    someone_logged_in = (select(User.id).where(User.organisation_id == Organisation.id,
                                               User.last_login_at.is_not(None)).exists())
    has_accounts = (select(User.id).where(User.organisation_id == Organisation.id,
                                          User.state != "disabled").exists())
    query = (select(Organisation.id, Organisation.code, Organisation.name, Organisation.kind,
                    Organisation.prefecture)
             .where(~someone_logged_in, has_accounts))
    if flt.kind:
        query = query.where(Organisation.kind == flt.kind)
    if flt.prefecture:
        query = query.where(Organisation.prefecture == flt.prefecture)
    if flt.q:
        query = query.where(_org_match(flt.q.replace(" ", "")))
    return query


def _with_contacts(session, rows) -> list[dict]:
    """Add the number of accounts, the first invitation date and a contact (the first account) to each org."""
    org_ids = [r.id for r in rows]
    facts: dict[int, tuple] = {}
    contacts: dict[int, tuple] = {}
    for start in range(0, len(org_ids), 5000):
        part = org_ids[start:start + 5000]
        for org_id, n, since, contact_id in session.execute(
                select(User.organisation_id, func.count(User.id), func.min(User.created_at), func.min(User.id))
                .where(User.organisation_id.in_(part), User.state != "disabled").group_by(User.organisation_id)):
            facts[org_id] = (n, since, contact_id)
        wanted = set(part)
        ids = [f[2] for org_id, f in facts.items() if org_id in wanted]
        for row in session.execute(select(User.id, User.name, User.email, User.phone).where(User.id.in_(ids))):
            contacts[row.id] = row
    out = []
    for r in rows:
        n, since, contact_id = facts.get(r.id, (0, None, None))
        c = contacts.get(contact_id)
        out.append({"id": r.id, "code": r.code, "name": r.name, "kind": r.kind, "prefecture": r.prefecture,
                    "users": n, "since": since, "contact_id": contact_id,
                    "contact_name": c.name if c else "", "contact_email": c.email if c else "",
                    "contact_phone": (c.phone or "") if c else ""})
    return out


def outreach_page(session, flt: OutreachFilter, page: int = 1, per_page: int = PAGE_SIZE) -> tuple[list[dict], int]:
    """Organisations where nobody has logged in yet (one page) and the total count."""
    base = _outreach_query(flt)
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    rows = session.execute(base.order_by(Organisation.prefecture, Organisation.code)
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return _with_contacts(session, rows), int(total or 0)


OUTREACH_CSV_HEADER = ["org_code", "org_name", "org_kind", "prefecture", "users", "invited_since",
                       "contact_name", "contact_email", "contact_phone"]


def outreach_csv(session, flt: OutreachFilter, actor: Actor) -> str:
    """The whole outreach list as CSV text (UTF-8 with BOM for Excel), every cell neutralised by csv_safe().

    The export itself is audited (personal data leaves the system).
    """
    rows = _with_contacts(session, session.execute(
        _outreach_query(flt).order_by(Organisation.prefecture, Organisation.code)).all())
    buffer = _io.StringIO()
    buffer.write("\ufeff")
    writer = _csv.writer(buffer)
    writer.writerow(OUTREACH_CSV_HEADER)
    for r in rows:
        since = to_tokyo(r["since"])
        writer.writerow([csv_safe(r["code"]), csv_safe(r["name"]), csv_safe(r["kind"]), csv_safe(r["prefecture"]),
                         r["users"], since.strftime("%Y-%m-%d") if since else "", csv_safe(r["contact_name"]),
                         csv_safe(r["contact_email"]), csv_safe(r["contact_phone"])])
    audit.record(session, actor, "accounts.outreach_exported", "organisation", None,
                 {"filters": flt.as_args(), "rows": len(rows)})
    session.commit()
    return buffer.getvalue()


# --------------------------------------------------------------------------- user search and administration

def search_users(session, q: str, page: int = 1, per_page: int = PAGE_SIZE, *, state: str = "",
                 role: str = "") -> tuple[list[User], int]:
    """Find users by name (spaces ignored: 佐藤健一 finds 佐藤 健一), e-mail, phone (digits), org code or name.

    On PostgreSQL the name / e-mail / phone conditions use trigram indexes (POSTGRES_DDL in models.py);
    organisations are matched first (a small table) and their users found through organisation_id.
    """
    query = select(User)
    term = normalize(q).replace(" ", "")
    if term:
        like = _like(term)
        conditions = [_squeezed(User.name).like(like, escape="\\"), User.email.like(like, escape="\\")]
        org_ids = session.scalars(select(Organisation.id).where(_org_match(term)).limit(2001)).all()
        if org_ids:
            conditions.append(User.organisation_id.in_(org_ids))
        digits = "".join(ch for ch in term if ch.isdigit())
        if len(digits) >= 4 and len(digits) >= len(term.replace("-", "")) - 1:
            conditions.append(func.replace(User.phone, literal_column("'-'"), literal_column("''"))
                              .like(_like(digits), escape="\\"))
        query = query.where(or_(*conditions))
    if state in ("invited", "activated", "disabled"):
        query = query.where(User.state == state)
    elif state == "locked":
        query = query.where(User.locked_at.is_not(None),
                            or_(User.locked_until.is_(None), User.locked_until > utcnow()))
    if role in USER_ROLES:
        query = query.where(or_(User.roles == role, User.roles.like(f"{role} %"), User.roles.like(f"% {role}"),
                                User.roles.like(f"% {role} %")))
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(User.id).subquery()))
    users = session.scalars(query.order_by(User.name, User.id).limit(per_page).offset((page - 1) * per_page)).all()
    return list(users), int(total or 0)


def clean_roles(roles) -> str:
    """Validate a list (or space-separated string) of roles; returns the stored form."""
    if isinstance(roles, str):
        roles = roles.split()
    chosen = [r for r in USER_ROLES if r in set(roles)]
    unknown = set(roles) - set(USER_ROLES)
    if unknown:
        raise AccountError(_l("使えない権限があります: %(roles)s", roles=", ".join(sorted(unknown))))
    if not chosen:
        raise AccountError(_l("利用者の権限を1つ以上選んでください。"))
    return " ".join(chosen)


def update_user(session, user_id: int, actor: Actor, *, name: str | None = None, phone: str | None = None,
                organisation_id: int | None | bool = False, roles=None, locale: str | None = None) -> User:
    """Change a user's profile / roles; audits before → after. organisation_id=False means unchanged."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError(_l("利用者が見つかりません。"))
    changes: dict[str, list] = {}

    def setattr_logged(attr, value):
        before = getattr(user, attr)
        if before != value:
            changes[attr] = [before, value]
            setattr(user, attr, value)

    if name is not None:
        name = normalize_name(name)
        if not name:
            raise AccountError(_l("氏名を入力してください。"), field="name")
        setattr_logged("name", name)
    if phone is not None:
        setattr_logged("phone", phone.strip() or None)
    if organisation_id is not False:
        if organisation_id is not None and session.get(Organisation, organisation_id) is None:
            raise AccountError(_l("組織が見つかりません。"), field="org_code")
        setattr_logged("organisation_id", organisation_id)
    if roles is not None:
        new_roles = clean_roles(roles)
        if actor.user_id == user.id and "admin" in user.role_set and "admin" not in new_roles.split():
            raise AccountError(_l("自分自身の管理者権限は外せません（ほかの管理者に依頼してください）。"))
        setattr_logged("roles", new_roles)
    if locale is not None and locale in ("ja", "en"):
        setattr_logged("locale", locale)
    if changes:
        audit.record(session, actor, "user.updated", "user", user.id, {"changes": changes})
    session.commit()
    return user


def normalize_name(name: str) -> str:
    import unicodedata

    return " ".join(unicodedata.normalize("NFKC", clean_input(name or "", 200)).split())


def create_organisation(session, *, code: str, name: str, kind: str, prefecture: str | None, parent_code: str | None,
                        actor: Actor) -> Organisation:
    import unicodedata

    code = unicodedata.normalize("NFKC", (code or "").strip())
    name = normalize_name(name)
    if not code or len(code) > 32 or not all(ch.isalnum() or ch in "-_" for ch in code) or not code.isascii():
        raise AccountError(_l("組織コードは英数字・ハイフン32文字以内で入力してください。"), field="code")
    if kind not in ORG_KINDS:
        raise AccountError(_l("組織区分を選んでください。"), field="kind")
    if kind == "municipality" and not (len(code) == 6 and code.isdigit()):
        raise AccountError(_l("自治体の組織コードは6桁の数字にしてください。"), field="code")
    if not name:
        raise AccountError(_l("組織名を入力してください。"), field="name")
    if prefecture and prefecture not in PREFECTURES:
        raise AccountError(_l("都道府県を選んでください。"), field="prefecture")
    if session.scalar(select(Organisation.id).where(Organisation.code == code)):
        raise AccountError(_l("この組織コードは既に登録されています。"), field="code")
    parent_id = None
    if kind == "clinic":
        parent_code = (parent_code or "").strip() or (code[:6] if len(code) == 10 and code.isdigit() else "")
        parent = session.scalar(select(Organisation).where(Organisation.code == parent_code,
                                                           Organisation.kind == "municipality"))
        if parent is None:
            raise AccountError(_l("医療機関の所属自治体（自治体コード）が見つかりません。"), field="parent_code")
        parent_id = parent.id
    org = Organisation(code=code, name=name, kind=kind, prefecture=prefecture or None, parent_id=parent_id)
    session.add(org)
    session.flush()
    audit.record(session, actor, "organisation.created", "organisation", org.id,
                 {"code": code, "name": name, "kind": kind, "prefecture": prefecture})
    session.commit()
    return org


def search_organisations(session, q: str = "", kind: str = "", page: int = 1, per_page: int = PAGE_SIZE):
    users = (select(User.organisation_id, func.count(User.id).label("users"),
                    func.count(User.last_login_at).label("logged_in"))
             .group_by(User.organisation_id).subquery())
    query = (select(Organisation, func.coalesce(users.c.users, 0), func.coalesce(users.c.logged_in, 0))
             .outerjoin(users, users.c.organisation_id == Organisation.id))
    term = normalize(q).replace(" ", "")
    if term:
        like = _like(term)
        query = query.where(or_(func.lower(Organisation.code).like(like, escape="\\"),
                                func.replace(func.lower(Organisation.name), " ", "").like(like, escape="\\")))
    if kind in ORG_KINDS:
        query = query.where(Organisation.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(Organisation.id).subquery()))
    rows = session.execute(query.order_by(Organisation.code).limit(per_page).offset((page - 1) * per_page)).all()
    return rows, int(total or 0)


@_dataclass
class AuditFilter:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @classmethod
    def parse(cls, args) -> tuple["AuditFilter", dict[str, str]]:
        errors: dict[str, str] = {}
        values = {}
        for key, limit in (("actor", 254), ("action", 64), ("object_type", 40), ("object_id", 64)):
            value = (args.get(key) or "").strip()
            if len(value) > limit:
                errors[key] = _l("%(limit)s文字までにしてください。", limit=limit)
                value = value[:limit]
            values[key] = value
        for key in ("date_from", "date_to"):
            raw = (args.get(key) or "").strip()
            values[key] = None
            if raw:
                try:
                    values[key] = dt.date.fromisoformat(raw)
                except ValueError:
                    errors[key] = _l("日付は YYYY-MM-DD の形で入力してください。")
        return cls(**values), errors

    def as_args(self) -> dict[str, str]:
        out = {k: getattr(self, k) for k in ("actor", "action", "object_type", "object_id") if getattr(self, k)}
        for key in ("date_from", "date_to"):
            if getattr(self, key):
                out[key] = getattr(self, key).isoformat()
        return out


def audit_page(session, flt: AuditFilter, page: int = 1, per_page: int | None = PAGE_SIZE):
    """Audit rows, newest first, filtered; dates are Tokyo calendar days."""
    query = select(AuditLog)
    if flt.actor:  # part of the login or of the person's name
        like = _like(flt.actor.lower())
        named = select(User.id).where(func.replace(func.lower(User.name), " ", "").like(
            _like(flt.actor.lower().replace(" ", "").replace("\u3000", "")), escape="\\"))
        query = query.where(or_(func.lower(AuditLog.actor_label).like(like, escape="\\"),
                                AuditLog.actor_id.in_(named)))
    if flt.action:
        if flt.action in ACTIONS:  # chosen from the list: exactly this action (user.password_reset ≠ …_requested)
            query = query.where(AuditLog.action == flt.action)
        else:
            query = query.where(AuditLog.action.like(flt.action.replace("%", "").replace("_", "\\_") + "%",
                                                     escape="\\"))
    if flt.object_type:
        query = query.where(AuditLog.object_type == flt.object_type)
    if flt.object_id:
        query = query.where(AuditLog.object_id == flt.object_id)
    if flt.date_from:
        start = dt.datetime.combine(flt.date_from, dt.time(), TOKYO)
        query = query.where(AuditLog.at >= start)
    if flt.date_to:
        end = dt.datetime.combine(flt.date_to + dt.timedelta(days=1), dt.time(), TOKYO)
        query = query.where(AuditLog.at < end)
    if per_page is None:  # the export: every matching row
        return list(session.scalars(query.order_by(AuditLog.id.desc()))), None
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(AuditLog.id).subquery()))
    rows = session.scalars(query.order_by(AuditLog.id.desc()).limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), int(total or 0)


def audit_actor_names(session, rows) -> dict[int, str]:
    """Display names of the people behind audit rows, in one query."""
    ids = {r.actor_id for r in rows if r.actor_id}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def audit_object_types(session) -> list[str]:
    return list(session.scalars(select(AuditLog.object_type).distinct().order_by(AuditLog.object_type).limit(100)))


def audit_csv(session, flt: AuditFilter, actor: Actor) -> str:
    """The filtered audit log as CSV (UTF-8 with BOM), in words, every cell through csv_safe(); audited."""
    rows, _total = audit_page(session, flt, per_page=None)
    names = audit_actor_names(session, rows)
    buffer = _io.StringIO()
    buffer.write("\ufeff")
    writer = _csv.writer(buffer)
    writer.writerow([str(h) for h in CSV_HEADER])
    for r in rows:
        lines = ([r.summary] if r.summary else []) + detail_lines(r.action, r.detail)
        writer.writerow([to_tokyo(r.at).strftime("%Y-%m-%d %H:%M:%S") if r.at else "", csv_safe(r.actor_label),
                         csv_safe(names.get(r.actor_id, "")), csv_safe(r.ip or ""), csv_safe(action_label(r.action)),
                         csv_safe(object_label(r.object_type)), csv_safe(r.object_id or ""),
                         csv_safe(" / ".join(lines)), csv_safe(r.action)])
    audit.record(session, actor, "audit.exported", "audit", None, {"filters": flt.as_args(), "rows": len(rows)})
    session.commit()
    return buffer.getvalue()


def audit_actions(session) -> list[str]:
    return list(session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action).limit(300)))
