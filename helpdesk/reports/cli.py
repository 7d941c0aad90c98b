"""`helpdesk report monthly --month 2026-10 [--csv|--json]`."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

report_cli = AppGroup("report", help="Client reports.")


@report_cli.command("monthly")
@click.option("--month", help="YYYY-MM (Asia/Tokyo); default: the previous month")
@click.option("--csv", "as_csv", is_flag=True, help="print CSV")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def monthly_command(month: str | None, as_csv: bool, as_json: bool) -> None:
    """The monthly BPO client report per role."""
    from helpdesk.extensions import db
    from helpdesk.reports import service

    try:
        month = service.parse_month(month)
    except service.ReportError as exc:
        raise click.BadParameter(str(exc), param_hint="--month")
    report = service.monthly_report(db.session, month)
    if as_csv:
        click.echo(service.report_csv(report).lstrip("\ufeff"), nl=False)
        return
    if as_json:
        click.echo(json.dumps(service.report_json(report), ensure_ascii=False, indent=2))
        return
    click.echo(f"Monthly report {report.month}")
    for row in service.report_rows(report):
        click.echo(f"  {row['role']:<13} received={row['received']:>6}  FR in SLA={row['first_response_within_sla_pct']}%"
                   f"  resolution in SLA={row['resolution_within_sla_pct']}%  p90 FR={row['p90_first_response_business_min']} min"
                   f"  FCR={row['fcr_pct']}%  CSAT={row['csat_avg']} ({row['csat_count']})  backlog={row['backlog_end']}")
    time = report.time or {}
    click.echo(f"  time logged: {time.get('total_minutes', 0)} min")
    for agent in time.get("agents", []):
        click.echo(f"    {agent['name']:<20} {agent['minutes']:>6} min  tickets={agent['tickets']}")


COMMANDS = [report_cli]
