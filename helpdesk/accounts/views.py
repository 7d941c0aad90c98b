"""Login, logout, password change and reset."""
from __future__ import annotations

import datetime as dt

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from helpdesk.accounts import bp, oidc, service, twofactor, twofactor_views
from helpdesk.accounts.forms import ChangePasswordForm, LoginForm, ResetForm, ResetRequestForm
from helpdesk.audit import Actor
from helpdesk.auth import login_required, public
from helpdesk.extensions import db, limiter
from helpdesk.security import client_ip, safe_next

_ALWAYS_ALLOWED = {"accounts.login", "accounts.logout", "accounts.change_password", "static", "core.set_language",
                   "core.healthz", "accounts.reset_request", "accounts.reset"}


@bp.before_app_request
def _force_password_change():
    """A user with an initial password must set their own before anything else.

    Not in a session opened through single sign-on: that person does not use the password.
    """
    if (current_user.is_authenticated and current_user.must_change_password and not session.get("sso")
            and request.endpoint not in _ALWAYS_ALLOWED and not request.path.startswith("/api/")):
        return redirect(url_for("accounts.change_password", next=request.full_path.rstrip("?")))


def _login_account_key() -> str:
    return "login-account:" + (request.form.get("email") or "").strip().lower()[:254]


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_account_key)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    error = None
    if form.validate_on_submit():
        if oidc.refuse_password_login(db.session, oidc.settings(current_app.config), form.email.data,
                                      form.password.data, client_ip()):
            user = None  # staff sign in through the identity provider (OIDC_REQUIRE_FOR_STAFF)
        else:
            user = service.authenticate(db.session, form.email.data, form.password.data, client_ip())
        if user is None:
            error = _(service.LOGIN_FAILED)
        elif twofactor.is_enabled(db.session, user.id):  # the code step comes before the session
            return twofactor_views.begin_challenge(user, safe_next(form.next.data))
        else:
            lang = session.get("lang")
            session.clear()  # a fresh session id at login (no fixation)
            if lang:
                session["lang"] = lang
            login_user(user)
            now = dt.datetime.now(dt.timezone.utc).timestamp()
            session["login_at"] = session["seen_at"] = now
            session.permanent = True
            if user.must_change_password:
                flash(_("初回ログインです。新しいパスワードを設定してください。"), "warning")
                return redirect(url_for("accounts.change_password", next=safe_next(form.next.data) or ""))
            return redirect(safe_next(form.next.data) or url_for("core.index"))
    return render_template("accounts/login.html", form=form, error=error), 200 if not error else 401


@bp.post("/logout")
@public
def logout():
    if current_user.is_authenticated:
        user = db.session.get(type(current_user._get_current_object()), current_user.id)
        service.end_sessions(db.session, user.id, Actor(user.id, user.email, client_ip()))
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("ログアウトしました。"), "success")
    return redirect(url_for("accounts.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = service.set_password(db.session, current_user.id, form.new_password.data,
                                        Actor(current_user.id, current_user.email, client_ip()),
                                        current_password=form.current_password.data, require_current=True)
        except service.AccountError as exc:
            (form.current_password if exc.field == "current_password" else form.new_password).errors.append(str(exc))
        else:
            # The session version changed: sign this browser in again, end all others.
            login_user(user)
            session["login_at"] = session["seen_at"] = dt.datetime.now(dt.timezone.utc).timestamp()
            flash(_("パスワードを変更しました。"), "success")
            return redirect(safe_next(request.args.get("next")) or url_for("core.index"))
    return render_template("accounts/change_password.html", form=form)


@bp.route("/password/forgot", methods=["GET", "POST"])
@public
@limiter.limit("5 per minute", methods=["POST"])
def reset_request():
    form = ResetRequestForm()
    if form.validate_on_submit():
        service.request_password_reset(db.session, form.email.data, Actor(None, "anonymous", client_ip()))
        # Same answer whether or not the address is known.
        flash(_("登録されているメールアドレスであれば、再設定用のリンクを送信しました。メールをご確認ください。"), "success")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_request.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@public
@limiter.limit("10 per minute", methods=["POST"])
def reset(token: str):
    form = ResetForm()
    if request.method == "GET" and not service.reset_token_valid(db.session, token):
        flash(_("このリンクは無効か、有効期限が切れています。もう一度パスワード再設定を申し込んでください。"), "error")
        return redirect(url_for("accounts.reset_request"))
    if form.validate_on_submit():
        try:
            service.reset_password_with_token(db.session, token, form.new_password.data, client_ip())
        except service.AccountError as exc:
            form.new_password.errors.append(str(exc))
        else:
            flash(_("パスワードを再設定しました。新しいパスワードでログインしてください。"), "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset.html", form=form)
