"""Activation dashboard, user search and user page (staff), administration (users, organisations, audit,
the user import in the browser)."""
from __future__ import annotations

import unicodedata

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField

from helpdesk import audit
from helpdesk.accounts import bp, bulk_import, service
from helpdesk.accounts.forms import OrganisationForm, UserForm
from helpdesk.accounts.importer import _EMAIL
from helpdesk.accounts.importer import COLUMNS as IMPORT_COLUMNS
from helpdesk.accounts.importer import ImportFileError
from helpdesk.accounts.models import AuditLog, Organisation, User
from helpdesk.audit import Actor
from helpdesk.auth import SUPERVISORS, admin_required, staff_required, supervisor_required
from helpdesk.common import ORG_KINDS, PREFECTURES, USER_ROLES
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.accounts import audit_words
from helpdesk.common import csv_safe
from helpdesk.security import _error_page
from helpdesk.tickets.display import open_tickets_of
from helpdesk.tickets.models import Ticket


def _actor() -> Actor:
    return Actor(current_user.id, current_user.email, client_ip())


def _page() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        abort(404)
    return int(raw)


def _pages(total: int, per_page: int = service.PAGE_SIZE) -> int:
    return max(1, -(-total // per_page))


def _check_page(page: int, total: int) -> None:
    if page > _pages(total):
        abort(404)


def _page_urls(endpoint: str, page: int, total: int, args: dict, **values):
    prev_url = url_for(endpoint, page=page - 1, **args, **values) if page > 1 else None
    next_url = url_for(endpoint, page=page + 1, **args, **values) if page < _pages(total) else None
    return prev_url, next_url


# --------------------------------------------------------------------------- activation dashboard

@bp.get("/accounts/activation")
@supervisor_required
def activation():
    flt, errors = service.OutreachFilter.parse(request.args)
    page = _page()
    stats = service.activation_stats(db.session)
    rows, total = service.outreach_page(db.session, flt, page)
    _check_page(page, total)
    prev_url, next_url = _page_urls("accounts.activation", page, total, flt.as_args())
    return render_template("accounts/activation.html", stats=stats, rows=rows, total=total, flt=flt, errors=errors,
                           page=page, pages=_pages(total), prev_url=prev_url, next_url=next_url,
                           kinds=ORG_KINDS, prefectures=PREFECTURES)


@bp.post("/accounts/activation/export")
@supervisor_required
def activation_export():
    flt, _errors = service.OutreachFilter.parse(request.form)
    body = service.outreach_csv(db.session, flt, _actor())
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=outreach.csv", "Cache-Control": "no-store"})


# --------------------------------------------------------------------------- users (staff)

@bp.get("/accounts/users")
@staff_required
def users():
    q = unicodedata.normalize("NFKC", request.args.get("q", "")).strip()[:100]
    state = request.args.get("state", "")
    state = state if state in ("invited", "activated", "locked", "disabled") else ""
    role = request.args.get("role", "")
    role = role if role in USER_ROLES else ""
    page = _page()
    found, total = service.search_users(db.session, q, page, state=state, role=role)
    _check_page(page, total)
    args = {k: v for k, v in (("q", q), ("state", state), ("role", role)) if v}
    prev_url, next_url = _page_urls("accounts.users", page, total, args)
    return render_template("accounts/users.html", users=found, total=total, q=q, state=state, role=role,
                           roles=USER_ROLES, page=page, pages=_pages(total), prev_url=prev_url, next_url=next_url)


def _target(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _may_act_on(user: User) -> bool:
    """Agents help the public; accounts of staff are handled by supervisors and admins."""
    if user.is_staff or user.has_role("product_owner"):
        return current_user.has_role(*SUPERVISORS)
    return True


@bp.get("/accounts/users/<int:user_id>")
@staff_required
def user_detail(user_id: int):
    user = _target(user_id)
    history = db.session.scalars(select(AuditLog).where(AuditLog.object_type == "user",
                                                        AuditLog.object_id == str(user.id))
                                 .order_by(AuditLog.id.desc()).limit(20)).all()
    open_tickets = None
    try:
        open_tickets = open_tickets_of(db.session, user.id)  # listed (linked), not only counted
    except Exception:  # tickets not available
        db.session.rollback()
    return render_template("accounts/user.html", user=user, history=history, may_act=_may_act_on(user),
                           open_tickets=open_tickets, is_locked=user.is_locked())


def _user_action(user_id: int, run, message: str, admin_only: bool = False):
    user = _target(user_id)
    if admin_only and not current_user.has_role("admin"):
        abort(403)
    if not _may_act_on(user):
        abort(403)
    try:
        run(user)
    except service.AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(message, "success")
    return redirect(url_for("accounts.user_detail", user_id=user.id))


@bp.post("/accounts/users/<int:user_id>/reset-link")
@staff_required
def user_send_reset(user_id: int):
    def run(user):
        if not service.request_password_reset(db.session, user.email, _actor()):
            raise service.AccountError(_("無効化されたアカウントには再設定リンクを送れません。"))

    return _user_action(user_id, run, _("パスワード再設定リンクを送信しました。"))


@bp.post("/accounts/users/<int:user_id>/unlock")
@staff_required
def user_unlock(user_id: int):
    return _user_action(user_id, lambda u: service.unlock(db.session, u.id, _actor()), _("ロックを解除しました。"))


@bp.post("/accounts/users/<int:user_id>/end-sessions")
@staff_required
def user_end_sessions(user_id: int):
    return _user_action(user_id, lambda u: service.end_sessions(db.session, u.id, _actor()),
                        _("この利用者のすべてのログイン中の画面をログアウトさせました。"))


@bp.post("/accounts/users/<int:user_id>/disable")
@admin_required
def user_disable(user_id: int):
    def run(user):
        if user.id == current_user.id:
            raise service.AccountError(_("自分自身は無効化できません。"))
        service.set_disabled(db.session, user.id, True, _actor())

    return _user_action(user_id, run, _("アカウントを無効化しました。"), admin_only=True)


@bp.post("/accounts/users/<int:user_id>/enable")
@admin_required
def user_enable(user_id: int):
    return _user_action(user_id, lambda u: service.set_disabled(db.session, u.id, False, _actor()),
                        _("アカウントを有効に戻しました。"), admin_only=True)


# --------------------------------------------------------------------------- administration

@bp.get("/admin")
@admin_required
def admin_home():
    counts = {
        "users": db.session.scalar(select(func.count(User.id))),
        "organisations": db.session.scalar(select(func.count(Organisation.id))),
        "admins": db.session.scalar(select(func.count(User.id)).where(User.roles.like("%admin%"))),
        "audit": db.session.scalar(select(func.count(AuditLog.id))),
    }
    recent = db.session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(10)).all()
    return render_template("accounts/admin_home.html", counts=counts, recent=recent)


def _org_id_for(code: str | None, form: UserForm) -> int | None | bool:
    code = unicodedata.normalize("NFKC", (code or "")).strip()
    if not code:
        return None
    org_id = db.session.scalar(select(Organisation.id).where(Organisation.code == code))
    if org_id is None:
        form.org_code.errors.append(_("この組織コードは登録されていません。"))
        return False
    return org_id


@bp.route("/admin/users/new", methods=["GET", "POST"])
@admin_required
def admin_user_new():
    form = UserForm()
    if request.method == "GET":
        form.roles.data = ["requester"]
    if form.validate_on_submit():
        email = unicodedata.normalize("NFKC", form.email.data).strip().lower()
        org_id = _org_id_for(form.org_code.data, form)
        if not _EMAIL.match(email):
            form.email.errors.append(_("メールアドレスの形式が正しくありません。"))
        elif org_id is not False:
            try:
                roles = service.clean_roles(form.roles.data or [])
                user = service.create_user(db.session, email=email, name=service.normalize_name(form.name.data),
                                           organisation_id=org_id, roles=roles, actor=_actor(),
                                           locale=form.locale.data, phone=(form.phone.data or "").strip() or None)
            except service.AccountError as exc:
                (form.email if exc.field == "email" else form.roles).errors.append(str(exc))
            else:
                flash(_("利用者を登録しました。「再設定リンクを送る」で本人に案内してください。"), "success")
                return redirect(url_for("accounts.user_detail", user_id=user.id))
    return render_template("accounts/user_form.html", form=form, user=None)


@bp.route("/admin/users/<int:user_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_user_edit(user_id: int):
    user = _target(user_id)
    form = UserForm(obj=user)
    form.email.render_kw = {**(form.email.render_kw or {}), "readonly": True}
    if request.method == "GET":
        form.roles.data = user.roles.split()
        form.org_code.data = user.organisation.code if user.organisation else ""
    else:
        form.email.data = user.email  # the login id is not edited here
    if form.validate_on_submit():
        org_id = _org_id_for(form.org_code.data, form)
        if org_id is not False:
            try:
                service.update_user(db.session, user.id, _actor(), name=form.name.data, phone=form.phone.data or "",
                                    organisation_id=org_id, roles=form.roles.data or [], locale=form.locale.data)
            except service.AccountError as exc:
                target = {"name": form.name, "org_code": form.org_code}.get(exc.field, form.roles)
                target.errors.append(str(exc))
            else:
                flash(_("利用者の情報を更新しました。"), "success")
                return redirect(url_for("accounts.user_detail", user_id=user.id))
    return render_template("accounts/user_form.html", form=form, user=user)


@bp.get("/admin/organisations")
@admin_required
def admin_organisations():
    q = unicodedata.normalize("NFKC", request.args.get("q", "")).strip()[:100]
    kind = request.args.get("kind", "")
    kind = kind if kind in ORG_KINDS else ""
    page = _page()
    rows, total = service.search_organisations(db.session, q, kind, page)
    _check_page(page, total)
    args = {k: v for k, v in (("q", q), ("kind", kind)) if v}
    prev_url, next_url = _page_urls("accounts.admin_organisations", page, total, args)
    return render_template("accounts/organisations.html", rows=rows, total=total, q=q, kind=kind, kinds=ORG_KINDS,
                           page=page, pages=_pages(total), prev_url=prev_url, next_url=next_url)


@bp.route("/admin/organisations/new", methods=["GET", "POST"])
@admin_required
def admin_organisation_new():
    form = OrganisationForm()
    if form.validate_on_submit():
        try:
            service.create_organisation(db.session, code=form.code.data, name=form.name.data, kind=form.kind.data,
                                        prefecture=form.prefecture.data or None, parent_code=form.parent_code.data,
                                        actor=_actor())
        except service.AccountError as exc:
            target = {"parent_code": form.parent_code, "name": form.name, "prefecture": form.prefecture,
                      "kind": form.kind}.get(exc.field, form.code)
            target.errors.append(str(exc))
        else:
            flash(_("組織を登録しました。"), "success")
            return redirect(url_for("accounts.admin_organisations", q=form.code.data))
    return render_template("accounts/organisation_form.html", form=form)


@bp.get("/admin/audit")
@admin_required
def admin_audit():
    flt, errors = service.AuditFilter.parse(request.args)
    page = _page()
    rows, total = service.audit_page(db.session, flt, page)
    _check_page(page, total)
    prev_url, next_url = _page_urls("accounts.admin_audit", page, total, flt.as_args())
    return render_template("accounts/audit.html", rows=rows, total=total, flt=flt, errors=errors, page=page,
                           pages=_pages(total), prev_url=prev_url, next_url=next_url,
                           actions=audit_words.action_choices(service.audit_actions(db.session)),
                           object_types=service.audit_object_types(db.session),
                           names=service.audit_actor_names(db.session, rows), words=audit_words)


@bp.post("/admin/audit/export")
@admin_required
def admin_audit_export():
    flt, _errors = service.AuditFilter.parse(request.form)
    body = service.audit_csv(db.session, flt, _actor())
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=audit.csv", "Cache-Control": "no-store"})


# --------------------------------------------------------------------------- user import in the browser (issue 16.7)

#: the largest user file accepted (100,000 users with long names is ~15 MB)
IMPORT_MAX_BYTES = 32 * 1024 * 1024


class ImportUploadForm(FlaskForm):
    file = FileField(_l("CSVファイル"), render_kw={"accept": ".csv,text/csv"})


class ImportConfirmForm(FlaskForm):
    renames_ok = BooleanField(_l("上の組織名の変更を確認しました。この内容で組織名を変更します。"))


def _import_limit() -> int:
    return int(current_app.config.get("USER_IMPORT_MAX_BYTES") or IMPORT_MAX_BYTES)


@bp.url_value_preprocessor
def _import_body_limit(endpoint, values):
    # Runs before every before_request hook (CSRF and the input check read the form): the user file may be
    # larger than the site-wide MAX_CONTENT_LENGTH.
    if endpoint == "accounts.admin_import":
        request.max_content_length = _import_limit()


@bp.errorhandler(RequestEntityTooLarge)
def _import_too_large(exc):
    if request.endpoint != "accounts.admin_import":
        return _error_page(413, exc.name, _("送信されたデータが大きすぎます。ファイルのサイズを確認してください。"))
    form = ImportUploadForm(formdata=None)
    form.file.errors = [_too_large_message()]
    return _render_upload(form), 413


def _too_large_message() -> str:
    return _("ファイルが大きすぎます（上限 %(mb)d MB）。ファイルを分けてアップロードしてください。",
             mb=_import_limit() // (1024 * 1024))


def _render_upload(form):
    recent = db.session.scalars(select(bulk_import.UserImport).where(bulk_import.UserImport.status != "checked")
                                .order_by(bulk_import.UserImport.id.desc()).limit(5)).all()
    return render_template("accounts/import_upload.html", form=form, columns=IMPORT_COLUMNS, recent=recent,
                           limit_mb=_import_limit() // (1024 * 1024))


@bp.route("/admin/users/import", methods=["GET", "POST"])
@admin_required
def admin_import():
    form = ImportUploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.read(_import_limit() + 1) if upload else b""
        if not upload or not upload.filename:
            form.file.errors.append(_("CSVファイルを選んでください。"))
        elif len(data) > _import_limit():
            form.file.errors.append(_too_large_message())
        elif not data.strip(b"\xef\xbb\xbf \r\n\t"):
            form.file.errors.append(_("ファイルが空です。1行目に見出し、2行目から利用者を1人1行で入れてください。"))
        else:
            try:
                row = bulk_import.check_upload(db.session, data, upload.filename, _actor())
            except ImportFileError as exc:
                db.session.rollback()
                form.file.errors.append(str(exc))
            else:
                return redirect(url_for("accounts.admin_upload_show", public_id=row.public_id))
    return _render_upload(form)


def _import_row(public_id: str) -> bulk_import.UserImport:
    row = bulk_import.find(db.session, public_id[:32])
    if row is None:
        abort(404)
    return row


@bp.get("/admin/users/import/<public_id>")
@admin_required
def admin_upload_show(public_id: str):
    row = _import_row(public_id)
    if row.status == "checked":
        return render_template("accounts/import_check.html", row=row, plan=bulk_import.for_display(row.plan),
                               form=ImportConfirmForm(), details=bulk_import.DETAILS)
    return render_template("accounts/import_progress.html", row=row, refused=bulk_import.refused_rows(row.result))


@bp.post("/admin/users/import/<public_id>/confirm")
@admin_required
def admin_import_confirm(public_id: str):
    row = _import_row(public_id)
    form = ImportConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        bulk_import.confirm_import(db.session, row.public_id, _actor(), bool(form.renames_ok.data))
    except bulk_import.ImportConfirmError as exc:
        db.session.rollback()
        row = _import_row(public_id)
        if row.status != "checked":
            flash(str(exc), "error")
            return redirect(url_for("accounts.admin_upload_show", public_id=row.public_id))
        form.renames_ok.errors = [str(exc)]
        return render_template("accounts/import_check.html", row=row, plan=bulk_import.for_display(row.plan),
                               form=form, details=bulk_import.DETAILS), 422
    return redirect(url_for("accounts.admin_upload_show", public_id=row.public_id))


@bp.get("/admin/users/import/<public_id>/status")
@admin_required
def admin_upload_status(public_id: str):
    row = _import_row(public_id)
    response = jsonify(bulk_import.status_of(row))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/admin/users/import/<public_id>/refused.csv")
@admin_required
def admin_upload_refused(public_id: str):
    import csv
    import io

    row = _import_row(public_id)
    source = row.result if row.status in ("done", "failed") and row.result else row.plan
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("行"), _("理由")])
    writer.writerows((line, csv_safe(message)) for line, message in bulk_import.refused_rows(source))
    audit.record(db.session, _actor(), "users.import_refused_exported", "user_import", row.public_id,
                 {"file": row.filename, "rows": len(source.get("errors", []))})
    db.session.commit()
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename=refused-{row.public_id}.csv", "Cache-Control": "no-store"})
