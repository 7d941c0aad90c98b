"""HTTP views of custom fields: the admin page, the agents' edit on the ticket page, the queue CSV export.

The phone intake and the portal form render the inputs with `tickets/_custom_fields.html` and check
them with `custom_fields.form_values`; messages for a refused value reach the page through `g.cf_errors`
(one message next to each input).
"""
from __future__ import annotations

import csv
import io

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from helpdesk.audit import Actor
from helpdesk.auth import admin_required, staff_required
from helpdesk.common import csv_safe, to_tokyo
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.templating import CHANNEL_LABELS, STATUS_LABELS
from helpdesk.tickets import bp, service
from helpdesk.tickets import custom_fields as cf
from helpdesk.tickets import queue as queue_mod
from helpdesk.tickets.models import Ticket
from helpdesk.tickets import views

TYPE_LABELS = {"text": _l("テキスト（1行）"), "number": _l("数値"), "date": _l("日付"), "choice": _l("選択肢"),
               "checkbox": _l("チェックボックス")}
#: Rows of one CSV export at most (the queue's filters narrow it down).
EXPORT_MAX_ROWS = 10_000


def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def _locale() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "ja")


class CustomFieldForm(FlaskForm):
    key = StringField(_l("キー（英小文字・数字・_）"), validators=[Optional(), Length(max=40)],
                      render_kw={"autocomplete": "off", "spellcheck": "false", "placeholder": "lot_number"})
    label_ja = StringField(_l("表示名（日本語）"), validators=[DataRequired(_l("表示名（日本語）を入力してください。")),
                                                       Length(max=100)])
    label_en = StringField(_l("表示名（英語）"), validators=[Optional(), Length(max=100)])
    type = SelectField(_l("種類"), choices=[(k, v) for k, v in TYPE_LABELS.items()])
    choices = TextAreaField(_l("選択肢（種類が「選択肢」のとき、1行に1つ）"), validators=[Optional(), Length(max=10_000)],
                            render_kw={"rows": 5})
    required = BooleanField(_l("入力を必須にする"))
    category = SelectField(_l("対象のカテゴリ"), choices=[], validators=[Optional()])
    position = IntegerField(_l("表示順"), default=0, validators=[
        Optional(), NumberRange(min=0, max=9999, message=_l("表示順は0〜9999の数字で入力してください。"))])
    active = BooleanField(_l("有効"), default=True)


def _fill(form: CustomFieldForm) -> None:
    form.category.choices = [("", _("すべてのチケット"))] + service.category_choices(db.session, _locale())


def _apply_errors(form: CustomFieldForm, exc: cf.CustomFieldError) -> None:
    for name, message in exc.field_errors.items():
        target = getattr(form, name, None) or form.label_ja
        target.errors = list(target.errors) + [message]


# --- admin ------------------------------------------------------------------------------------

@bp.route("/admin/custom-fields", methods=["GET", "POST"])
@admin_required
def custom_fields():
    """The field definitions; POST adds one."""
    form = CustomFieldForm()
    _fill(form)
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                field = cf.create_field(db.session, _actor(), key=form.key.data or "", label_ja=form.label_ja.data,
                                        label_en=form.label_en.data or "", type=form.type.data,
                                        choices=form.choices.data or "", required=form.required.data,
                                        category=form.category.data or None, position=form.position.data or 0)
                flash(_("項目「%(label)s」を追加しました。", label=field.label(_locale())), "success")
                return redirect(url_for("tickets.custom_fields"))
            except cf.CustomFieldError as exc:
                db.session.rollback()
                _apply_errors(form, exc)
        else:  # the service's messages too, so every problem shows at once
            found = cf.definition_errors((form.key.data or "").strip(), (form.label_ja.data or "").strip(),
                                         form.type.data, form.choices.data or "")
            _apply_errors(form, cf.CustomFieldError({k: v for k, v in found.items()
                                                     if not getattr(form, k, form.label_ja).errors}))
        status = 400
    fields = cf.all_fields(db.session)
    usage = {f.id: cf.count_values(db.session, f.id) for f in fields}
    return render_template("tickets/custom_fields_admin.html", form=form, fields=fields, usage=usage,
                           type_labels=TYPE_LABELS, locale=_locale()), status


@bp.route("/admin/custom-fields/<int:field_id>", methods=["GET", "POST"])
@admin_required
def custom_field_edit(field_id: int):
    field = db.session.get(cf.CustomField, field_id) or abort(404)
    if request.method == "POST":
        form = CustomFieldForm()
    else:
        form = CustomFieldForm(formdata=None, key=field.key, label_ja=field.label_ja, label_en=field.label_en,
                               type=field.type, choices=cf.choices_text(field), required=field.required,
                               category=field.category.code if field.category else "", position=field.position,
                               active=field.active)
    _fill(form)
    form.key.data, form.type.data = field.key, field.type  # fixed once created
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                cf.update_field(db.session, _actor(), field.id, label_ja=form.label_ja.data,
                                label_en=form.label_en.data or "", choices=form.choices.data or "",
                                required=form.required.data, category=form.category.data or None,
                                position=form.position.data or 0, active=form.active.data)
                flash(_("項目「%(label)s」を保存しました。", label=field.label(_locale())), "success")
                return redirect(url_for("tickets.custom_fields"))
            except cf.CustomFieldError as exc:
                db.session.rollback()
                _apply_errors(form, exc)
        status = 400
    return render_template("tickets/custom_field_edit.html", form=form, field=field, type_labels=TYPE_LABELS,
                           usage=cf.count_values(db.session, field.id)), status


# --- inputs on the ticket forms ---------------------------------------------------------------

@bp.app_template_global("custom_field_inputs")
def custom_field_inputs(ticket: Ticket | None = None) -> dict:
    """What `tickets/_custom_fields.html` renders: the fields, the values to show and the messages.

    On a new-ticket form every active field is listed with its category (the script shows those of the
    chosen category; the server checks only those). On a ticket page: the fields of its category and
    any other field that holds a value.
    """
    locale = _locale()
    errors = g.get("cf_errors") or {}
    posted = request.method == "POST" and g.get("cf_posted", True)
    if ticket is None:
        fields = cf.fields_for(db.session, None, include_other_categories=True)
        raw = {cf.PREFIX + f.key: request.form.get(cf.PREFIX + f.key, "") for f in fields} if posted else {}
        return {"fields": fields, "raw": raw, "errors": errors, "locale": locale, "ticket": None}
    values = cf.values_of(db.session, [ticket.id])[ticket.id]
    fields = [f for f in cf.all_fields(db.session)
              if (f.active and f.applies_to(ticket.category_id)) or f.key in values]
    if posted and errors:
        raw = {cf.PREFIX + f.key: request.form.get(cf.PREFIX + f.key, "") for f in fields}
    else:
        raw = {}
        for f in fields:
            value = values.get(f.key)
            raw[cf.PREFIX + f.key] = ("1" if value else "") if f.type == "checkbox" else (
                cf.stored_text(f, value) or "")
    shown = {f.key: cf.display(f, values.get(f.key), locale) for f in fields}
    return {"fields": fields, "raw": raw, "errors": errors, "locale": locale, "ticket": ticket, "shown": shown}


def check_new_ticket_form(category_code: str | None) -> dict | None:
    """The typed custom field values of the posted new-ticket form; None (messages in g.cf_errors) if refused."""
    try:
        return cf.form_values(db.session, request.form, category_code or None)
    except cf.CustomFieldError as exc:
        g.cf_errors = exc.field_errors
        return None


@bp.post("/tickets/<ref>/custom-fields")
@staff_required
def update_custom_fields(ref: str):
    """Agents change the ticket's custom field values; each change is a ticket event."""
    try:
        ticket = service.get_visible(db.session, current_user, ref)
    except service.NotFound:
        abort(404)
    form = FlaskForm()  # CSRF
    version = request.form.get("version", "")
    if not form.validate() or not version.isdigit():
        abort(400)
    values = cf.values_of(db.session, [ticket.id])[ticket.id]
    fields = [f for f in cf.all_fields(db.session, active_only=True)
              if f.applies_to(ticket.category_id) or f.key in values]
    raw = {}
    for f in fields:
        name = cf.PREFIX + f.key
        if f.type == "checkbox":
            raw[f.key] = name in request.form
        elif name in request.form:
            raw[f.key] = request.form.get(name)
    try:
        changed = cf.update_ticket_values(db.session, ticket.id, raw, _actor(), expected_version=int(version))
    except cf.CustomFieldError as exc:
        db.session.rollback()
        g.cf_errors = exc.field_errors
        flash(_("追加項目を保存できませんでした。赤く表示された項目を確認してください。"), "error")
        return views._render_detail(db.session.get(Ticket, ticket.id), status=400)
    except (service.VersionConflict, StaleDataError):
        db.session.rollback()
        g.cf_errors = {}
        flash(_("保存できませんでした: このチケットはあなたが開いた後に他の担当者が更新しました。"
                "最新の内容を確認してから、もう一度保存してください。"), "error")
        ticket = db.session.get(Ticket, ticket.id)
        db.session.refresh(ticket)
        return views._render_detail(ticket, status=409)
    if changed:
        flash(_("追加項目を保存しました。"), "success")
    else:
        flash(_("変更はありませんでした。"), "info")
    return redirect(url_for("tickets.detail", ref=ticket.ref) + "#custom-fields")


@bp.app_template_global("custom_field_event")
def custom_field_event(event) -> str:
    return cf.describe_event(db.session, event, _locale())


# --- CSV export of the queue --------------------------------------------------------------------

@bp.get("/agent/queue/export.csv")
@staff_required
def queue_export():
    """The queue's current filters as CSV (UTF-8 with BOM for Excel), one column per custom field."""
    args = MultiDict(request.args)
    args.pop("cursor", None)
    try:
        filters = queue_mod.parse_filters(args)
    except queue_mod.FilterError as exc:
        flash(" ".join(exc.field_errors.values()), "error")
        return redirect(url_for("tickets.queue"))
    locale = _locale()
    fields = cf.all_fields(db.session)
    header = [_("チケット番号"), _("件名"), _("ステータス"), _("優先度"), _("カテゴリ"), _("受付チャネル"), _("組織コード"),
              _("組織"), _("依頼者"), _("担当者"), _("受付日時"), _("更新日時")]
    header += [f.label(locale) + f" ({f.key})" for f in fields]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    cursor, written = None, 0
    while written < EXPORT_MAX_ROWS:
        page = queue_mod.query_tickets(db.session, current_user, filters, cursor=cursor, limit=queue_mod.MAX_LIMIT)
        values = cf.values_of(db.session, [t.id for t in page.items])
        for t in page.items:
            row = [t.ref, t.subject, str(STATUS_LABELS.get(t.status, t.status)), t.priority,
                   t.category.label(locale) if t.category else "", str(CHANNEL_LABELS.get(t.channel, t.channel)),
                   t.organisation.code if t.organisation else "", t.organisation.name if t.organisation else "",
                   t.requester.name if t.requester else "", t.assignee.name if t.assignee else "",
                   _jst(t.created_at), _jst(t.updated_at)]
            mine = values.get(t.id, {})
            row += [cf.display(f, mine.get(f.key), locale) if (f.key in mine or f.type != "checkbox") else ""
                    for f in fields]
            writer.writerow([csv_safe(v) for v in row])
            written += 1
        cursor = page.next_cursor
        if not cursor:
            break
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="tickets.csv"'})


def _jst(value) -> str:
    value = to_tokyo(value)
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@bp.app_template_global("custom_field_filter_fields")
def custom_field_filter_fields() -> list:
    return cf.all_fields(db.session, active_only=True)


@bp.app_template_global("custom_field_filter_arg")
def custom_field_filter_arg(condition) -> tuple[str, str]:
    return cf.filter_arg(condition)


@bp.app_template_test("custom_field_key")
def custom_field_key(name) -> bool:
    return isinstance(name, str) and name.startswith(cf.PREFIX)


@bp.app_template_global("custom_field_values")
def custom_field_values(ticket: Ticket) -> list[tuple[str, str]]:
    """(label, value in words) of the active fields holding a value on the ticket (the portal's summary)."""
    locale = _locale()
    values = cf.values_of(db.session, [ticket.id])[ticket.id]
    return [(f.label(locale), cf.display(f, values[f.key], locale)) for f in cf.all_fields(db.session, active_only=True)
            if f.key in values]
