"""Admin pages: API tokens (/admin/api-tokens) and webhook subscriptions (/admin/webhooks)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from helpdesk.api import service
from helpdesk.api.forms import TokenForm, WebhookForm
from helpdesk.api.models import ApiToken, WebhookSubscription
from helpdesk.audit import Actor
from helpdesk.auth import admin_required
from helpdesk.extensions import db
from helpdesk.security import client_ip

admin_bp = Blueprint("api_admin", __name__, url_prefix="/admin", template_folder="templates")


def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def _apply_errors(form, exc: service.ApiServiceError) -> None:
    mapping = {"user": "user_email"}
    for key, messages in exc.field_errors.items():
        field = getattr(form, mapping.get(key, key), None)
        if field is not None:
            field.errors = list(field.errors or []) + list(messages)
        else:
            for message in messages:
                flash(message, "error")


@admin_bp.route("/api-tokens", methods=["GET", "POST"])
@admin_required
def tokens():
    form = TokenForm()
    created = None
    status = 200
    if form.validate_on_submit():
        try:
            created = service.create_token(db.session, name=form.name.data, user_email=form.user_email.data,
                                           scopes=form.scopes.data, expires_in_days=form.expires_in_days.data,
                                           actor=_actor())
            form = TokenForm(formdata=None)
        except service.ApiServiceError as exc:
            db.session.rollback()
            _apply_errors(form, exc)
            status = 400
    elif form.is_submitted():
        status = 400
    return render_template("api/tokens.html", form=form, tokens=service.list_tokens(db.session), created=created,
                           now=service.utcnow()), status


@admin_bp.post("/api-tokens/<int:token_id>/revoke")
@admin_required
def revoke_token(token_id: int):
    from flask_wtf import FlaskForm

    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        token = service.revoke_token(db.session, token_id, _actor())
    except service.ApiServiceError:
        abort(404)
    flash(_("トークン「%(name)s」を無効化しました。", name=token.name), "success")
    return redirect(url_for("api_admin.tokens"))


@admin_bp.route("/webhooks", methods=["GET", "POST"])
@admin_required
def webhooks():
    form = WebhookForm()
    created = None
    status = 200
    if form.validate_on_submit():
        try:
            created = service.create_subscription(
                db.session, name=form.name.data, url=form.url.data, events=form.events.data,
                description=form.description.data, actor=_actor(),
                allowed_hosts=current_app.config.get("WEBHOOK_ALLOWED_HOSTS") or ())
            form = WebhookForm(formdata=None)
        except service.ApiServiceError as exc:
            db.session.rollback()
            _apply_errors(form, exc)
            status = 400
    elif form.is_submitted():
        status = 400
    subs = list(db.session.scalars(db.select(WebhookSubscription).order_by(WebhookSubscription.id)))
    return render_template("api/webhooks.html", form=form, subs=subs, created=created), status


@admin_bp.get("/webhooks/<int:sub_id>")
@admin_required
def webhook_detail(sub_id: int):
    sub = db.session.get(WebhookSubscription, sub_id) or abort(404)
    return render_template("api/webhook_detail.html", sub=sub, rows=service.deliveries(db.session, sub))


@admin_bp.post("/webhooks/<int:sub_id>/active")
@admin_required
def webhook_active(sub_id: int):
    from flask import request
    from flask_wtf import FlaskForm

    if not FlaskForm().validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    try:
        sub = service.set_subscription_active(db.session, sub_id, active, _actor())
    except service.ApiServiceError:
        abort(404)
    flash(_("Webhook「%(name)s」を有効にしました。", name=sub.name) if active
          else _("Webhook「%(name)s」を停止しました。", name=sub.name), "success")
    return redirect(url_for("api_admin.webhooks"))


__all__ = ["admin_bp", "ApiToken"]
