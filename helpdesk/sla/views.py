"""SLA settings pages (supervisors and admins): closed days and policies."""
from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from helpdesk.audit import Actor
from helpdesk.auth import supervisor_required
from helpdesk.common import TOKYO
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.sla import bp, forms, service
from helpdesk.sla.models import SlaPolicy
from helpdesk.accounts.models import Organisation
from helpdesk.templating import ROLE_LABELS
from helpdesk.web import shows_refusals
from helpdesk.tickets.service import category_choices


def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


@bp.app_template_global("sla_state")
def sla_state_global(ticket):
    """(state, minutes left) for a ticket badge: `{% set state, left = sla_state(t) %}`."""
    return service.sla_state(ticket)


@bp.route("/sla/closed-days", methods=["GET", "POST"])
@supervisor_required
@shows_refusals(service.SlaError, form=forms.ClosedDayForm, field="day",
                page=lambda form: (_calendar_page(form=form), 400))
def closed_days():
    form = forms.ClosedDayForm()
    status = 200
    if request.method == "POST":
        if form.validate():
            service.add_closed_day(db.session, form.day.data, form.reason.data or "", _actor())
            flash(_("休業日を登録しました。"), "success")
            return redirect(url_for("sla.closed_days"))
        status = 400
    return _calendar_page(form=form), status


def _hours_form() -> forms.DeskHoursForm:
    settings = service.desk_settings(db.session)
    values = {name: service.format_day_hours(settings["hours"].get(i, ()))
              for i, name in enumerate(service.WEEKDAYS)}
    return forms.DeskHoursForm(formdata=None, public_holidays=settings["public_holidays"],
                               year_end_closure=settings["year_end_closure"], **values)


def _calendar_page(form=None, hours_form=None, ics_form=None):
    today = dt.datetime.now(TOKYO).date()
    rows = service.list_closed_days(db.session, since=today - dt.timedelta(days=365))
    return render_template("sla/closed_days.html", form=form or forms.ClosedDayForm(formdata=None), rows=rows,
                           delete_form=forms.DeleteForm(), hours_form=hours_form or _hours_form(),
                           ics_form=ics_form or forms.IcsImportForm(formdata=None),
                           weekdays=service.WEEKDAYS, settings=service.desk_settings(db.session))


@bp.post("/sla/hours")
@supervisor_required
def desk_hours():
    """Save the desk hours per weekday and the holiday / year-end switches (audited)."""
    form = forms.DeskHoursForm()
    if form.validate():
        hours, failed = {}, False
        for i, name in enumerate(service.WEEKDAYS):
            try:
                hours[i] = service.parse_day_hours(form[name].data)
            except service.SlaError as exc:
                form[name].errors = [_(str(exc))]
                failed = True
        if not failed:
            try:
                service.set_desk_hours(db.session, hours, _actor(), public_holidays=bool(form.public_holidays.data),
                                       year_end_closure=bool(form.year_end_closure.data))
                flash(_("受付時間を保存しました。"), "success")
                return redirect(url_for("sla.closed_days"))
            except service.SlaError as exc:
                db.session.rollback()
                form.mon.errors = [_(str(exc))]
    return _calendar_page(hours_form=form), 400


@bp.post("/sla/closed-days/<int:closed_day_id>/delete")
@supervisor_required
def closed_day_delete(closed_day_id: int):
    if not forms.DeleteForm().validate():
        abort(400)
    try:
        service.remove_closed_day(db.session, closed_day_id, _actor())
    except service.SlaError:
        abort(404)
    flash(_("休業日を削除しました。"), "success")
    return redirect(url_for("sla.closed_days"))


@bp.post("/sla/closed-days/import")
@supervisor_required
@shows_refusals(service.SlaError, form=forms.IcsImportForm, field="ics",
                page=lambda form: (_calendar_page(ics_form=form), 400))
def closed_days_import():
    """Add the all-day events of an uploaded iCalendar file as closed days (a bad file changes nothing)."""
    form = forms.IcsImportForm()
    if form.validate():
        upload = form.ics.data
        result = service.import_closed_days(db.session, upload.read(1_000_001)[:1_000_000], _actor(),
                                            filename=upload.filename or "")
        flash(_("休業日を %(added)s 日追加しました（登録済み %(already)s 日）。", added=result["added"],
                already=result["already_closed"]), "success")
        return redirect(url_for("sla.closed_days"))
    return _calendar_page(ics_form=form), 400


def _organisation_id(code: str | None) -> int | None:
    from sqlalchemy import select

    code = (code or "").strip()
    if not code:
        return None
    org_id = db.session.scalar(select(Organisation.id).where(Organisation.code == code))
    if org_id is None:
        raise service.SlaError(_("組織コード「%(code)s」の組織が見つかりません。", code=code))
    return org_id


def _policy_choices(form: forms.PolicyForm) -> None:
    form.role.choices = [("", _("すべて"))] + [(k, str(ROLE_LABELS[k])) for k in ("municipality", "clinic", "wholesaler")]
    form.category.choices = [("", _("すべて"))] + category_choices(db.session, str(get_locale() or "ja"))


@bp.route("/sla/policies", methods=["GET", "POST"])
@supervisor_required
def policies():
    form = forms.PolicyForm()
    _policy_choices(form)
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                org_id = _organisation_id(form.organisation_code.data)
            except service.SlaError as exc:
                form.organisation_code.errors = [str(exc)]
                return render_template("sla/policies.html", form=form, rows=service.list_policies(db.session),
                                       defaults=service.DEFAULT_TARGETS), 400
            try:
                service.save_policy(db.session, _actor(), priority=form.priority.data, organisation_id=org_id,
                                    next_update_minutes=form.minutes["next_update"],
                                    role=form.role.data or None, category_code=form.category.data or None,
                                    first_response_minutes=form.minutes["first_response"],
                                    resolution_minutes=form.minutes["resolution"],
                                    at_risk_percent=form.at_risk_percent.data,
                                    auto_escalate=bool(form.auto_escalate.data),
                                    policy_id=request.form.get("policy_id", type=int))
                flash(_("SLAポリシーを保存しました。"), "success")
                return redirect(url_for("sla.policies"))
            except service.SlaError as exc:
                db.session.rollback()
                form.resolution_hours.errors = [str(exc)]
        status = 400
    return render_template("sla/policies.html", form=form, rows=service.list_policies(db.session),
                           defaults=service.DEFAULT_TARGETS), status


@bp.get("/sla/policies/<int:policy_id>")
@supervisor_required
def policy_edit(policy_id: int):
    row = db.session.get(SlaPolicy, policy_id) or abort(404)
    form = forms.PolicyForm(priority=row.priority, role=row.role or "", category=row.category_code or "",
                            at_risk_percent=row.at_risk_percent, auto_escalate=row.auto_escalate,
                            organisation_code=row.organisation.code if row.organisation_id else "")
    form.set_minutes(first_response=row.first_response_minutes, resolution=row.resolution_minutes,
                     next_update=row.next_update_minutes)
    _policy_choices(form)
    return render_template("sla/policies.html", form=form, rows=service.list_policies(db.session),
                           defaults=service.DEFAULT_TARGETS, editing=row)
