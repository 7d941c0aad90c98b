"""OpenID Connect single sign-on for staff: settings, linked identities, and who may sign in.

Plain service functions (no request): the pages are in `oidc_views.py`, which runs the authorization
code flow with Authlib (PKCE S256, state, nonce; the id_token's signature checked against the
provider's JWKS, and iss/aud/exp/nonce against what we sent) and hands the verified claims to
`sign_in`. A person is found by the provider's `sub` (issuer + subject, stored on first link);
the first time only, by an e-mail address the provider says it verified. Only staff sign in this
way: requesters keep their password.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import ForeignKey, String, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk import audit
from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.common import STAFF_ROLES, UTCDateTime, utcnow
from helpdesk.extensions import db
from helpdesk.accounts.passwords import verify_password
from helpdesk.accounts.service import find_user_by_email

#: Roles that may use single sign-on: the desk's staff and the product owners (people of the BPO or
#: the ministry, who have an account at the organisation's identity provider). Requesters may not.
SSO_ROLES = frozenset(STAFF_ROLES | {"product_owner"})
#: Roles a new account may be given when OIDC_AUTO_CREATE is on (never admin: that is granted by a person).
AUTO_CREATE_ROLES = ("agent", "specialist", "supervisor", "product_owner")
DEFAULT_SCOPES = "openid email profile"

#: Reasons written to the audit log (named in accounts/audit_words.py) and the message shown for each.
REFUSALS = {
    "unknown": "このアカウントはヘルプデスクに登録されていません。管理者にアカウントの登録を依頼してください。",
    "domain": "このメールアドレスのドメインでは、シングルサインオンを利用できません。管理者にお問い合わせください。",
    "email_unverified": "IDプロバイダーでメールアドレスが確認されていないため、ヘルプデスクのアカウントと紐付けできません。"
                        "管理者にお問い合わせください。",
    "no_email": "IDプロバイダーからメールアドレスが届かなかったため、アカウントを特定できません。管理者にお問い合わせください。",
    "identity_conflict": "このアカウントは、IDプロバイダーの別の利用者と既に紐付いています。管理者にお問い合わせください。",
    "disabled": "このアカウントは無効になっています。管理者にお問い合わせください。",
    "not_staff": "シングルサインオンは職員用です。ログインID（メールアドレス）とパスワードでログインしてください。",
}


class ConfigError(RuntimeError):
    """The OIDC_* settings are incomplete or unsafe; the message names the setting."""


class SsoRefused(Exception):
    """The provider vouched for someone who may not sign in here; `reason` is a key of REFUSALS."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self) -> str:
        return REFUSALS[self.reason]


class UserIdentity(db.Model):
    """A user's account at an OpenID Connect provider, linked on their first single sign-on."""

    __tablename__ = "user_identities"
    __table_args__ = (
        UniqueConstraint("issuer", "subject"),
        # One account per provider and person: a second `sub` for the same user is refused, not added.
        UniqueConstraint("user_id", "issuer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: The provider's `iss` exactly as in its id_tokens.
    issuer: Mapped[str] = mapped_column(String(255))
    #: The provider's `sub`: stable and never reassigned, unlike an e-mail address.
    subject: Mapped[str] = mapped_column(String(255))
    #: The e-mail address the provider sent when the link was made (for the administrator's eyes only).
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<UserIdentity user={self.user_id} {self.issuer} {self.subject}>"


# --- settings ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str
    button_label: str | None
    allowed_domains: tuple[str, ...]
    auto_create: bool
    auto_create_roles: str
    scopes: str
    #: Staff other than administrators may not sign in with a password (administrators keep it as the
    #: way in when the provider is down).
    require_for_staff: bool = False
    #: Ask the provider to authenticate the person again on every sign-in (prompt=login), for shared
    #: workstations: without it, the next person at a PC whose provider session is still open signs in as
    #: the previous one.
    reauthenticate: bool = False

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


_ENV = ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_BUTTON_LABEL", "OIDC_ALLOWED_DOMAINS",
        "OIDC_AUTO_CREATE", "OIDC_AUTO_CREATE_ROLES", "OIDC_SCOPES", "OIDC_REQUIRE_FOR_STAFF",
        "OIDC_REAUTHENTICATE")


def init_app(app) -> None:
    """Take the OIDC_* settings from the environment (an explicit app config wins) and check them now."""
    for name in _ENV:
        if name not in app.config and os.environ.get(name) not in (None, ""):
            app.config[name] = os.environ[name]
    settings(app.config)  # a half-configured provider stops start-up with a message, not the first login


def _words(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(v).strip() for v in value if str(v).strip()]


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in {"1", "true", "yes", "on"}


def settings(config) -> Settings | None:
    """The provider settings, or None when single sign-on is not configured (no OIDC_ISSUER)."""
    issuer = (config.get("OIDC_ISSUER") or "").strip()
    if not issuer:
        return None
    client_id = (config.get("OIDC_CLIENT_ID") or "").strip()
    secret = config.get("OIDC_CLIENT_SECRET") or ""
    if not client_id or not secret:
        raise ConfigError("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET (from the identity "
                          "provider's client registration) are required too.")
    parts = urlsplit(issuer)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigError(f"OIDC_ISSUER must be an https:// URL (the provider's issuer), not {issuer!r}.")
    roles = _words(config.get("OIDC_AUTO_CREATE_ROLES") or "agent")
    wrong = [r for r in roles if r not in AUTO_CREATE_ROLES]
    if wrong or not roles:
        raise ConfigError(f"OIDC_AUTO_CREATE_ROLES may hold {', '.join(AUTO_CREATE_ROLES)} "
                          f"(space or comma separated), not {' '.join(wrong) or 'nothing'}.")
    scopes = _words(config.get("OIDC_SCOPES") or DEFAULT_SCOPES)
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    domains = tuple(d.lower().lstrip("@") for d in _words(config.get("OIDC_ALLOWED_DOMAINS")))
    return Settings(issuer=issuer, client_id=client_id, client_secret=secret,
                    button_label=(config.get("OIDC_BUTTON_LABEL") or "").strip() or None,
                    allowed_domains=domains, auto_create=_flag(config.get("OIDC_AUTO_CREATE")),
                    auto_create_roles=" ".join(r for r in AUTO_CREATE_ROLES if r in roles),
                    scopes=" ".join(dict.fromkeys(scopes)),
                    require_for_staff=_flag(config.get("OIDC_REQUIRE_FOR_STAFF")),
                    reauthenticate=_flag(config.get("OIDC_REAUTHENTICATE")))


def claims_options(cfg: Settings) -> dict:
    """What the id_token must say: our issuer, our client id among its audiences, a subject and times."""
    return {"iss": {"essential": True, "value": cfg.issuer}, "aud": {"essential": True, "value": cfg.client_id},
            "sub": {"essential": True}, "exp": {"essential": True}, "iat": {"essential": True}}


# --- signing in -------------------------------------------------------------------------------

def _email_verified(claims: dict) -> bool:
    # Some providers send the JSON string "true"; anything else (absent, false, "false") is not verified.
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _domain_allowed(cfg: Settings, email: str) -> bool:
    if not cfg.allowed_domains:
        return True
    return bool(email) and email.rpartition("@")[2] in cfg.allowed_domains


def _find_identity(session, issuer: str, subject: str) -> UserIdentity | None:
    return session.scalar(select(UserIdentity).where(UserIdentity.issuer == issuer,
                                                     UserIdentity.subject == subject))


def _refuse(session, cfg: Settings, reason: str, claims: dict, ip: str | None, user: User | None = None):
    email = (claims.get("email") or "").strip().lower()
    actor = Actor(user.id if user else None, (user.email if user else email or f"sso:{claims.get('sub')}")[:254], ip)
    audit.record(session, actor, "login.sso_refused", "user", user.id if user else None,
                 {"reason": reason, "issuer": cfg.issuer, "email": email or None})
    session.commit()
    raise SsoRefused(reason)


def record_failure(session, cfg: Settings, reason: str, ip: str | None, error: str | None = None) -> None:
    """Audit a sign-in the protocol refused before anyone was known (state, token, provider error)."""
    audit.record(session, Actor(None, "sso", ip), "login.sso_refused", "user", None,
                 {"reason": reason, "issuer": cfg.issuer, "error": (error or "")[:200] or None})
    session.commit()


def _resolve(session, cfg: Settings, claims: dict) -> tuple[User | None, UserIdentity | None, str | None]:
    """(user, existing identity, refusal reason) for verified claims, without writing anything."""
    subject = str(claims["sub"])
    email = (claims.get("email") or "").strip().lower()
    identity = _find_identity(session, cfg.issuer, subject)
    if identity is not None:
        return session.get(User, identity.user_id), identity, None
    if not email:
        return None, None, "no_email"
    user = find_user_by_email(session, email)
    if user is None:
        return None, None, None  # unknown: created or refused by the caller
    if not _email_verified(claims):
        return user, None, "email_unverified"
    linked = session.scalar(select(UserIdentity).where(UserIdentity.user_id == user.id,
                                                       UserIdentity.issuer == cfg.issuer))
    if linked is not None and linked.subject == subject:  # linked a moment ago by a concurrent sign-in
        return user, linked, None
    if linked is not None:  # the provider re-created the person (new sub): an administrator decides
        return user, None, "identity_conflict"
    return user, None, None


def _link(session, cfg: Settings, user: User, claims: dict, actor: Actor, how: str) -> UserIdentity:
    email = (claims.get("email") or "").strip().lower() or None
    identity = UserIdentity(user_id=user.id, issuer=cfg.issuer, subject=str(claims["sub"]), email=email)
    session.add(identity)
    session.flush()
    audit.record(session, actor, "user.identity_linked", "user", user.id,
                 {"issuer": cfg.issuer, "subject": identity.subject, "email": email, "via": how})
    return identity


def _create_user(session, cfg: Settings, claims: dict, ip: str | None) -> User:
    email = claims["email"].strip().lower()
    name = (claims.get("name") or " ".join(filter(None, (claims.get("family_name"), claims.get("given_name"))))
            or email.partition("@")[0]).strip()[:200]
    # No password: this person signs in through the provider (an admin can still issue one).
    user = User(email=email, name=name, organisation_id=None, roles=cfg.auto_create_roles, password_hash=None,
                must_change_password=False, locale="ja", state="invited")
    session.add(user)
    session.flush()
    audit.record(session, Actor(user.id, email, ip), "user.created", "user", user.id,
                 {"email": email, "roles": cfg.auto_create_roles, "via": "sso"})
    return user


def sign_in(session, cfg: Settings, claims: dict, ip: str | None = None) -> User:
    """Return the staff user the verified id_token claims stand for, linking or creating as allowed.

    Raises SsoRefused (after committing a `login.sso_refused` audit row) for anyone who may not sign in.
    """
    for attempt in (1, 2):
        try:
            return _sign_in(session, cfg, claims, ip)
        except IntegrityError:
            # Two first sign-ins of the same person raced to link: the other one won; look again.
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _sign_in(session, cfg: Settings, claims: dict, ip: str | None) -> User:
    email = (claims.get("email") or "").strip().lower()
    if not _domain_allowed(cfg, email):
        _refuse(session, cfg, "domain", claims, ip)
    user, identity, reason = _resolve(session, cfg, claims)
    if reason:
        _refuse(session, cfg, reason, claims, ip, user)
    created = False
    if user is None:
        if not cfg.auto_create:
            _refuse(session, cfg, "unknown", claims, ip)
        if not _email_verified(claims):
            _refuse(session, cfg, "email_unverified", claims, ip)
        user = _create_user(session, cfg, claims, ip)
        created = True
    if not user.is_active:
        _refuse(session, cfg, "disabled", claims, ip, user)
    if not user.role_set & SSO_ROLES:
        _refuse(session, cfg, "not_staff", claims, ip, user)
    actor = Actor(user.id, user.email, ip)
    linked = identity is None
    if identity is None:
        identity = _link(session, cfg, user, claims, actor, "created" if created else "email")
    now = utcnow()
    identity.last_login_at = now
    # The password lockout (failed_logins / locked_until) is about password guessing and is left as it
    # is: a provider sign-in neither unlocks the password nor is blocked by its lock.
    session.execute(update(User).where(User.id == user.id).values(last_login_at=now))
    if user.state == "invited":
        session.execute(update(User).where(User.id == user.id, User.state == "invited")
                        .values(state="activated", activated_at=now))
    detail = {"issuer": cfg.issuer, "newly_linked": linked}
    for claim in ("amr", "acr"):  # how the provider authenticated the person (e.g. ["pwd", "otp"])
        if claims.get(claim):
            detail[claim] = claims[claim]
    audit.record(session, actor, "login.sso_succeeded", "user", user.id, detail)
    session.commit()
    session.refresh(user)
    return user


def password_login_allowed(cfg: Settings | None, user: User) -> bool:
    """False for staff (not administrators) once OIDC_REQUIRE_FOR_STAFF is on: they use the provider."""
    if cfg is None or not cfg.require_for_staff or user.has_role("admin"):
        return True
    return not (user.role_set & SSO_ROLES)


def refuse_password_login(session, cfg: Settings | None, email: str, password: str, ip: str | None) -> bool:
    """True (and audited) when this address belongs to staff who must sign in through the provider.

    Checked before the password: the account's attempts are not used up and its password is not tried.
    The caller shows the same message as for a wrong password (the address's kind is not revealed);
    the login page says that staff sign in with single sign-on.
    """
    if cfg is None or not cfg.require_for_staff:
        return False
    user = find_user_by_email(session, email)
    if user is None or password_login_allowed(cfg, user):
        return False
    verify_password(None, password)  # the same work as a real check
    audit.record(session, Actor(user.id, user.email, ip), "login.refused", "user", user.id,
                 {"reason": "sso_required"})
    session.commit()
    return True


def identities_of(session, user_id: int) -> list[UserIdentity]:
    return list(session.scalars(select(UserIdentity).where(UserIdentity.user_id == user_id)
                                .order_by(UserIdentity.id)))


def unlink_identity(session, user_id: int, identity_id: int, actor: Actor) -> UserIdentity | None:
    """Remove one provider link of a user (e.g. the provider re-created the person); None if not theirs.

    The next single sign-on links again by a provider-verified e-mail address, as the first one did.
    """
    identity = session.get(UserIdentity, identity_id)
    if identity is None or identity.user_id != user_id:
        return None
    audit.record(session, actor, "user.identity_unlinked", "user", user_id,
                 {"issuer": identity.issuer, "subject": identity.subject, "email": identity.email})
    session.delete(identity)
    session.commit()
    return identity


def link_counts(session, cfg: Settings) -> dict[str, int]:
    """Staff accounts (SSO roles, not disabled) in all, and those linked to this provider."""
    from sqlalchemy import func, or_

    staff = or_(*[User.roles.like(f"%{role}%") for role in sorted(SSO_ROLES)])
    total = session.scalar(select(func.count()).select_from(User).where(staff, User.state != "disabled"))
    linked = session.scalar(select(func.count(func.distinct(UserIdentity.user_id)))
                            .join(User, User.id == UserIdentity.user_id)
                            .where(UserIdentity.issuer == cfg.issuer, staff, User.state != "disabled"))
    return {"staff": total or 0, "linked": linked or 0}
