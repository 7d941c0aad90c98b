"""The monthly client report page (printable A4), its CSV export."""
from __future__ import annotations

from flask import Response, render_template, request
from flask_babel import gettext as _

from helpdesk.auth import insights_required
from helpdesk.extensions import db
from helpdesk.reports import bp, charts, service
from helpdesk.templating import CHANNEL_LABELS, ROLE_LABELS
from helpdesk.tickets.models import CHANNELS, Category

#: The contractual SLA target shown as a line on the attainment charts.
SLA_TARGET_PCT = 90.0


def _role_label(role: str) -> str:
    if role == service.TOTAL:
        return _("全体")
    if role == "unknown":
        return _("不明")
    return str(ROLE_LABELS.get(role, role))


@bp.get("/reports/monthly")
@insights_required
def monthly():
    try:
        month = service.parse_month(request.args.get("month"))
    except service.ReportError as exc:
        return render_template("reports/monthly.html", error=str(exc), month=request.args.get("month", "")), 400
    report = service.monthly_report(db.session, month)
    if request.args.get("format") == "csv":
        return _csv(report)
    rows = report.role_rows()
    per_role = [f for f in rows if f.role != service.TOTAL]
    channel_chart = charts.hbar_stacked(
        _("受付件数（チャネル別）"), [(_role_label(f.role), [f.by_channel.get(c, 0) for c in CHANNELS]) for f in per_role],
        [str(CHANNEL_LABELS[c]) for c in CHANNELS])
    fr_chart = charts.pct_bars(_("初回応答のSLA達成率"), [(_role_label(f.role), f.first_response_pct) for f in rows],
                               SLA_TARGET_PCT)
    res_chart = charts.pct_bars(_("解決のSLA達成率"), [(_role_label(f.role), f.resolution_pct) for f in rows],
                                SLA_TARGET_PCT)
    categories = {c.code: c for c in db.session.query(Category).all()}
    return render_template("reports/monthly.html", report=report, rows=rows, month=month, role_label=_role_label,
                           channel_chart=channel_chart, fr_chart=fr_chart, res_chart=res_chart,
                           categories=categories, channels=CHANNELS, target=SLA_TARGET_PCT)


@bp.get("/reports/monthly.csv")
@insights_required
def monthly_csv():
    try:
        month = service.parse_month(request.args.get("month"))
    except service.ReportError as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    return _csv(service.monthly_report(db.session, month))


def _csv(report) -> Response:
    return Response(service.report_csv(report, translated=True, role_label=_role_label), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="helpdesk-report-{report.month}.csv"'})
