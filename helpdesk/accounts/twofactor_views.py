"""Two-factor sign-in pages: the code step after the password, enrolment with a QR code, the admin policy."""
from __future__ import annotations

import time

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from helpdesk.accounts import bp, twofactor
from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.auth import admin_required, login_required, public
from helpdesk.extensions import db, limiter
from helpdesk.security import client_ip, safe_next
from helpdesk import audit
from helpdesk.templating import USER_ROLE_LABELS

PENDING = "tf_pending"   # {"uid", "v", "at", "next", "tries"} between the password and the code
VERIFIED = "tf_ok"       # this session passed (or enrolled) two-factor sign-in
PENDING_SECONDS = 300
MAX_TRIES = 5
_GATE_ALLOWED = {"accounts.twofactor_setup", "accounts.logout", "accounts.change_password", "static",
                 "core.set_language", "core.healthz"}


class CodeForm(FlaskForm):
    code = StringField(_l("確認コード"), validators=[
        InputRequired(_l("認証アプリの6桁のコード、またはリカバリーコードを入力してください。")),
        Length(max=20, message=_l("認証アプリの6桁のコード、またはリカバリーコードを入力してください。"))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "text", "autocapitalize": "off"})


class PolicyForm(FlaskForm):
    roles = SelectMultipleField(_l("二段階認証を必須にする役割"), choices=[], validate_choice=True,
                                widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())


def _actor(user=None) -> Actor:
    return Actor.for_user(user or current_user, client_ip())


# --- the gate: required roles must enrol before anything else -----------------------------------

@bp.before_app_request
def _require_two_factor():
    if (not current_user.is_authenticated or session.get(VERIFIED) or request.endpoint in _GATE_ALLOWED
            or request.path.startswith("/api/")):
        return None
    if twofactor.is_required_for(db.session, current_user):
        if twofactor.is_enabled(db.session, current_user.id):
            session[VERIFIED] = True  # signed in before the policy: enrolled meanwhile elsewhere
            return None
        return redirect(url_for("accounts.twofactor_setup"))
    return None


# --- after the password -------------------------------------------------------------------------

def begin_challenge(user: User, next_url: str | None):
    """Called by the login view once the password matched for a user with two-factor sign-in."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session[PENDING] = {"uid": user.id, "v": user.session_version, "at": time.time(),
                        "next": safe_next(next_url) or "", "tries": 0}
    return redirect(url_for("accounts.twofactor_challenge"))


def _finish_login(user: User, next_url: str | None):
    lang = session.get("lang")
    session.clear()  # a fresh session at sign-in (no fixation)
    if lang:
        session["lang"] = lang
    login_user(user)
    now = time.time()
    session["login_at"] = session["seen_at"] = now
    session[VERIFIED] = True
    session.permanent = True
    if user.must_change_password:
        flash(_("初回ログインです。新しいパスワードを設定してください。"), "warning")
        return redirect(url_for("accounts.change_password", next=safe_next(next_url) or ""))
    return redirect(safe_next(next_url) or url_for("core.index"))


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login/2fa", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def twofactor_challenge():
    pending = session.get(PENDING)
    if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        session.pop(PENDING, None)
        flash(_("時間が経ったため、もう一度ログインしてください。"), "warning")
        return redirect(url_for("accounts.login"))
    user = db.session.get(User, pending["uid"])
    if user is None or not user.is_active or user.session_version != pending["v"]:
        session.pop(PENDING, None)
        return redirect(url_for("accounts.login"))
    form = CodeForm()
    if form.validate_on_submit():
        if twofactor.verify(db.session, user.id, form.code.data, audit_actor=_actor(user)):
            audit.record(db.session, _actor(user), "login.twofactor", "user", user.id, {})
            db.session.commit()
            return _finish_login(user, pending.get("next"))
        db.session.rollback()
        pending["tries"] = pending.get("tries", 0) + 1
        audit.record(db.session, _actor(user), "login.twofactor_failed", "user", user.id,
                     {"tries": pending["tries"]})
        db.session.commit()
        if pending["tries"] >= MAX_TRIES:
            session.pop(PENDING, None)
            flash(_("確認コードを続けて間違えました。もう一度ログインしてください。"), "error")
            return redirect(url_for("accounts.login"))
        session[PENDING] = pending
        form.code.errors = [_("確認コードが正しくありません。認証アプリに表示されている6桁の数字か、未使用のリカバリーコードを入力してください。")]
        return render_template("accounts/twofactor_challenge.html", form=form), 401
    return render_template("accounts/twofactor_challenge.html", form=form), 400 if form.errors else 200


# --- enrolment and the user's own settings ------------------------------------------------------

@bp.route("/account/2fa", methods=["GET", "POST"])
@login_required
def twofactor_setup():
    user = db.session.get(User, current_user.id)
    row = twofactor.status(db.session, user.id)
    form = CodeForm()
    required = twofactor.is_required_for(db.session, user)
    if row is not None and row.enabled_at is not None:
        return render_template("accounts/twofactor_setup.html", enabled=True, form=form, required=required,
                               left=twofactor.recovery_codes_left(db.session, user.id))
    if request.method == "POST" and request.form.get("action") == "start":
        if not form.validate() and "csrf_token" in form.errors:
            abort(400)
        twofactor.begin_enrolment(db.session, user)  # a new secret (POST: a GET never writes)
        return redirect(url_for("accounts.twofactor_setup"))
    if request.method == "POST" and request.form.get("action") == "confirm" and row is not None:
        if form.validate():
            try:
                codes = twofactor.confirm_enrolment(db.session, user, form.code.data, _actor(user))
            except twofactor.TwoFactorError as exc:
                form.code.errors = [_(str(exc))]
            else:
                session[VERIFIED] = True
                return render_template("accounts/twofactor_codes.html", codes=codes)
        row = twofactor.status(db.session, user.id)
        status = 400
    else:
        if row is None:  # nothing started yet: the page offers the button that makes a secret
            return render_template("accounts/twofactor_setup.html", enabled=False, started=False, form=form,
                                   required=required)
        form = CodeForm(formdata=None)
        status = 200
    uri = twofactor.provisioning_uri(user, row.secret)
    return render_template("accounts/twofactor_setup.html", enabled=False, started=True, form=form,
                           required=required, qr=Markup(twofactor.qr_svg(uri)), secret=row.secret), status


@bp.post("/account/2fa/disable")
@login_required
def twofactor_disable():
    user = db.session.get(User, current_user.id)
    form = CodeForm()
    if twofactor.is_required_for(db.session, user):
        abort(403)
    if form.validate():
        try:
            twofactor.disable(db.session, user, form.code.data, _actor(user))
            session.pop(VERIFIED, None)
            flash(_("二段階認証を無効にしました。"), "success")
            return redirect(url_for("accounts.twofactor_setup"))
        except twofactor.TwoFactorError as exc:
            db.session.rollback()
            form.code.errors = [_(str(exc))]
    return render_template("accounts/twofactor_setup.html", enabled=True, form=form, required=False,
                           left=twofactor.recovery_codes_left(db.session, user.id)), 400


@bp.post("/account/2fa/recovery-codes")
@login_required
def twofactor_recovery_codes():
    user = db.session.get(User, current_user.id)
    try:
        codes = twofactor.regenerate_recovery_codes(db.session, user, _actor(user))
    except twofactor.TwoFactorError:
        abort(400)
    return render_template("accounts/twofactor_codes.html", codes=codes)


# --- the administrator's policy -----------------------------------------------------------------

@bp.route("/admin/security/2fa", methods=["GET", "POST"])
@admin_required
def twofactor_policy():
    form = PolicyForm()
    form.roles.choices = [(r, str(USER_ROLE_LABELS.get(r, r))) for r in twofactor.ENFORCEABLE_ROLES]
    if request.method == "POST":
        if form.validate():
            twofactor.set_required_roles(db.session, form.roles.data or [], _actor())
            flash(_("二段階認証の設定を保存しました。"), "success")
            return redirect(url_for("accounts.twofactor_policy"))
        status = 400
    else:
        form.roles.data = sorted(twofactor.required_roles(db.session))
        status = 200
    return render_template("accounts/twofactor_policy.html", form=form), status
