"""Supervisor page: failed deliveries with their attempt log, and a retry button."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from helpdesk.audit import Actor
from helpdesk.auth import supervisor_required
from helpdesk.extensions import db
from helpdesk.notify import bp, service
from helpdesk.security import client_ip
from helpdesk.web import shows_refusals

PER_PAGE = 50


class RetryForm(FlaskForm):
    """CSRF-only form of the retry button."""


@bp.get("/notify/failed")
@supervisor_required
def failed():
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows, total = service.failed_deliveries(db.session, page, PER_PAGE)
    attempts = service.attempts_for(db.session, [r.id for r in rows])
    return render_template("notify/failed.html", rows=rows, total=total, attempts=attempts, page=page,
                           pages=max((total + PER_PAGE - 1) // PER_PAGE, 1), form=RetryForm(),
                           stats=service.outbox_stats(db.session))


@bp.post("/notify/outbox/<int:outbox_id>/retry")
@supervisor_required
@shows_refusals(service.NotifyError, redirect_to=lambda outbox_id: url_for("notify.failed"))
def retry(outbox_id: int):
    if not RetryForm().validate():
        abort(400)
    row = service.retry(db.session, outbox_id, Actor.for_user(current_user, client_ip()))
    flash(_("再送を予約しました（宛先: %(to)s）。", to=row.recipient), "success")
    return redirect(url_for("notify.failed"))
