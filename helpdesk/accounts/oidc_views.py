"""Single sign-on pages: send a staff member to the identity provider, take them back, open the session.

Authlib's Flask client runs the authorization code flow: it makes the state, the nonce and the PKCE
verifier (S256), keeps them in the signed session cookie, exchanges the code at the token endpoint
and checks the id_token (signature against the provider's JWKS; iss, aud, exp, iat and nonce against
`oidc.claims_options` and what we sent). Who may then sign in is decided in `oidc.sign_in`.
"""
from __future__ import annotations

import logging
import threading
import time

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user
from joserfc.errors import JoseError

from helpdesk.accounts import bp, oidc, twofactor_views
from helpdesk.audit import Actor
from helpdesk.auth import admin_required, public
from helpdesk.extensions import db, limiter
from helpdesk.routing import external_url
from helpdesk.security import client_ip, safe_next

logger = logging.getLogger(__name__)

NEXT = "sso_next"          # where to go after signing in, kept across the trip to the provider
STARTED = "sso_started"    # when the trip began: a callback much later is refused
SSO_SESSION = "sso"        # this session was opened through the identity provider
MAX_TRIP_SECONDS = 600
#: The provider's discovery document and keys are read again after this long (endpoints or keys may change;
#: a new signing key with an unknown kid is fetched at once anyway).
METADATA_MAX_AGE = 3600
_STATE_PREFIX = "_state_oidc_"  # Authlib's session keys for the state/nonce/verifier of a trip
_lock = threading.Lock()

_FAILED = "シングルサインオンでログインできませんでした。もう一度お試しください。続く場合は管理者にお問い合わせください。"
_UNREACHABLE = ("IDプロバイダーに接続できませんでした。しばらくしてからもう一度お試しいただくか、"
                "ログインID（メールアドレス）とパスワードでログインしてください。")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _settings() -> oidc.Settings:
    cfg = oidc.settings(current_app.config)
    if cfg is None:
        abort(404)
    return cfg


def _client(cfg: oidc.Settings):
    """The Authlib client for these settings, made once per process and again when the settings change or
    its copy of the provider's metadata is older than METADATA_MAX_AGE."""
    app = current_app._get_current_object()

    def usable(held) -> bool:
        return held is not None and held[0] == cfg and time.monotonic() - held[2] < METADATA_MAX_AGE

    held = app.extensions.get("helpdesk.oidc")
    if usable(held):
        return held[1]
    with _lock:
        held = app.extensions.get("helpdesk.oidc")
        if usable(held):
            return held[1]
        client = OAuth(app).register(
            "oidc", client_id=cfg.client_id, client_secret=cfg.client_secret,
            server_metadata_url=cfg.metadata_url,
            client_kwargs={"scope": cfg.scopes, "code_challenge_method": "S256", "default_timeout": 10})
        app.extensions["helpdesk.oidc"] = (cfg, client, time.monotonic())
        return client


class _IssuerMismatch(ValueError):
    pass


def _check_metadata(client, cfg: oidc.Settings) -> None:
    # The discovery document must name the issuer we were configured with (OpenID Connect Discovery §4.3):
    # otherwise tokens would be checked against another provider's name.
    metadata = client.load_server_metadata()
    if metadata.get("issuer") != cfg.issuer:
        raise _IssuerMismatch(f"discovery says issuer {metadata.get('issuer')!r}, configured {cfg.issuer!r}")


@bp.app_template_global()
def sso_login_label() -> str | None:
    """The text of the login page's single sign-on button, or None when it is not configured."""
    try:
        cfg = oidc.settings(current_app.config)
    except oidc.ConfigError:
        return None
    if cfg is None:
        return None
    return cfg.button_label or _("シングルサインオンでログイン")


@bp.app_template_global()
def sso_required_for_staff() -> bool:
    """Whether the login page must say that staff cannot sign in with a password."""
    try:
        cfg = oidc.settings(current_app.config)
    except oidc.ConfigError:
        return False
    return bool(cfg and cfg.require_for_staff)


# A link (GET), not a form: the trip leaves the site, and a form submission redirected to another origin
# is blocked by our Content-Security-Policy (form-action 'self'). Starting the trip changes nothing here;
# the state checked on return is what ties the answer to this browser.
@bp.get("/login/sso")
@public
@limiter.limit(_login_limit)
def sso_start():
    cfg = _settings()
    if current_user.is_authenticated:
        return redirect(url_for("core.index"))
    client = _client(cfg)
    try:
        _check_metadata(client, cfg)
    except (requests.RequestException, ValueError) as exc:
        logger.warning("OIDC provider %s unusable: %s", cfg.issuer, exc)
        flash(_(_UNREACHABLE), "error")
        return redirect(url_for("accounts.login"))
    for key in [k for k in session if k.startswith(_STATE_PREFIX)]:
        session.pop(key)  # one trip at a time per browser: an older, abandoned one ends here
    session[NEXT] = safe_next(request.args.get("next")) or ""
    session[STARTED] = time.time()
    extra = {"prompt": "login", "max_age": 0} if cfg.reauthenticate else {}
    return client.authorize_redirect(external_url("accounts.sso_callback"), **extra)


def _failed(cfg: oidc.Settings, reason: str, error: str | None = None, message: str = _FAILED):
    logger.info("OIDC sign-in refused (%s): %s", reason, error)
    db.session.rollback()
    oidc.record_failure(db.session, cfg, reason, client_ip(), error)
    for key in [k for k in session if k.startswith(_STATE_PREFIX)] + [NEXT, STARTED]:
        session.pop(key, None)
    flash(_(message), "error")
    return redirect(url_for("accounts.login"))


@bp.get("/login/sso/callback")
@public
@limiter.limit(_login_limit)
def sso_callback():
    cfg = _settings()
    if request.args.get("error"):  # the person cancelled, or the provider refused them
        return _failed(cfg, "provider_error", request.args.get("error"),
                       "IDプロバイダーでのログインが完了しませんでした。もう一度お試しください。")
    if time.time() - float(session.get(STARTED) or 0) > MAX_TRIP_SECONDS:
        return _failed(cfg, "state", "no trip started in this browser, or it is older than 10 minutes")
    client = _client(cfg)
    try:
        _check_metadata(client, cfg)
        token = client.authorize_access_token(claims_options=oidc.claims_options(cfg), leeway=60)
    except MismatchingStateError as exc:
        return _failed(cfg, "state", str(exc))
    except OAuthError as exc:  # the token endpoint refused the code (used, expired, wrong verifier)
        return _failed(cfg, "token", f"{exc.error}: {exc.description}")
    except JoseError as exc:  # the id_token: signature, issuer, audience, expiry or nonce
        return _failed(cfg, "id_token", f"{type(exc).__name__}: {exc}")
    except (requests.RequestException, ValueError) as exc:
        return _failed(cfg, "unreachable", f"{type(exc).__name__}: {exc}", _UNREACHABLE)
    claims = token.get("userinfo")
    if not claims:  # a token answer without an id_token proves nobody's identity
        return _failed(cfg, "id_token", "no id_token in the token response")
    if cfg.reauthenticate and not _authenticated_during_trip(claims):
        # The provider reused an older session instead of asking again (prompt=login, max_age=0 ignored).
        return _failed(cfg, "reauth", f"auth_time {claims.get('auth_time')!r} is before this sign-in began")
    next_url = session.get(NEXT)
    try:
        user = oidc.sign_in(db.session, cfg, dict(claims), client_ip())
    except oidc.SsoRefused as exc:
        for key in (NEXT, STARTED):
            session.pop(key, None)
        flash(_(exc.message), "error")
        return redirect(url_for("accounts.login"))
    return _open_session(user, next_url)


def _authenticated_during_trip(claims) -> bool:
    auth_time = claims.get("auth_time")
    started = float(session.get(STARTED) or 0)
    return isinstance(auth_time, (int, float)) and auth_time >= int(started) - 60  # the clock leeway of exp


def _open_session(user, next_url: str | None):
    lang = session.get("lang")
    session.clear()  # a fresh session at sign-in (no fixation)
    if lang:
        session["lang"] = lang
    login_user(user)
    now = time.time()
    session["login_at"] = session["seen_at"] = now
    # The provider authenticated the person, with its own second factor if the organisation requires one
    # (see README "Single sign-on"): the desk's TOTP step and enrolment gate apply to password sign-in.
    session[twofactor_views.VERIFIED] = True
    session[SSO_SESSION] = True
    session.permanent = True
    return redirect(safe_next(next_url) or url_for("core.index"))


# --- the administrator's view of a user's links (on the user page) ------------------------------

@bp.app_template_global()
def sso_identities(user_id: int) -> list:
    """The provider links of a user, for the user page (empty when there are none)."""
    return oidc.identities_of(db.session, user_id)


@bp.post("/accounts/users/<int:user_id>/identities/<int:identity_id>/unlink")
@admin_required
def sso_unlink(user_id: int, identity_id: int):
    if oidc.unlink_identity(db.session, user_id, identity_id, Actor.for_user(current_user, client_ip())) is None:
        abort(404)
    flash(_("シングルサインオンの紐付けを解除しました。次にシングルサインオンでログインしたとき、"
            "IDプロバイダーで確認済みのメールアドレスによって紐付け直されます。"), "success")
    return redirect(url_for("accounts.user_detail", user_id=user_id))


# --- the administrator's overview -------------------------------------------------------------------

def _provider_check(cfg: oidc.Settings) -> tuple[bool, str]:
    """Read the discovery document now (not the cached copy): (usable, what was found) for the admin page."""
    try:
        response = requests.get(cfg.metadata_url, timeout=5)
        response.raise_for_status()
        metadata = response.json()
    except (requests.RequestException, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}"[:300]
    if metadata.get("issuer") != cfg.issuer:
        return False, f"issuer {metadata.get('issuer')!r} ≠ {cfg.issuer!r}"
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not metadata.get(k)]
    if missing:
        return False, "missing: " + ", ".join(missing)
    algs = ", ".join(metadata.get("id_token_signing_alg_values_supported") or [])
    pkce = "S256" in (metadata.get("code_challenge_methods_supported") or ["S256"])
    return True, f"{algs}{'' if pkce else ' (no S256)'}"


@bp.get("/admin/security/sso")
@admin_required
def admin_sso():
    try:
        cfg = oidc.settings(current_app.config)
    except oidc.ConfigError as exc:  # only when changed after start-up; shown as it is
        return render_template("accounts/sso_status.html", cfg=None, problem=str(exc))
    if cfg is None:
        return render_template("accounts/sso_status.html", cfg=None, problem=None)
    reachable, found = _provider_check(cfg)
    return render_template("accounts/sso_status.html", cfg=cfg, problem=None, reachable=reachable, found=found,
                           redirect_uri=external_url("accounts.sso_callback"),
                           counts=oidc.link_counts(db.session, cfg))
