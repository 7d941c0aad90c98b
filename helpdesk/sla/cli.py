"""`helpdesk sla …`: the breach sweep (cron: `*/5 * * * * helpdesk sla sweep`), compliance, backfill."""
from __future__ import annotations

import json
import time

import click
from flask.cli import AppGroup

sla_cli = AppGroup("sla", help="SLA clock: sweep for at-risk / breached tickets, compliance figures.")


@sla_cli.command("sweep")
@click.option("--no-notify", is_flag=True, help="mark tickets but queue no mail")
def sweep_command(no_notify: bool) -> None:
    """Mark at-risk and breached tickets, notify assignee and supervisors, auto-escalate (idempotent)."""
    from helpdesk.extensions import db
    from helpdesk.sla import service

    started = time.perf_counter()
    result = service.sweep(db.session, notify=not no_notify)
    figures = result.as_dict()
    figures["seconds"] = round(time.perf_counter() - started, 3)
    click.echo(json.dumps(figures))


@sla_cli.command("compliance")
@click.option("--month", help="YYYY-MM (Asia/Tokyo)", required=True)
@click.option("--json", "as_json", is_flag=True)
def compliance_command(month: str, as_json: bool) -> None:
    """Share of tickets answered / resolved within SLA per role for a month."""
    from helpdesk.extensions import db
    from helpdesk.sla import service

    try:
        since, until = service.month_bounds(month)
    except service.SlaError as exc:
        raise click.BadParameter(str(exc), param_hint="--month")
    rows = service.compliance(db.session, since, until)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"{row['role']:<14} tickets={row['tickets']:>7}  first response "
                   f"{row['first_response_pct'] if row['first_response_pct'] is not None else '—'}%  resolution "
                   f"{row['resolution_pct'] if row['resolution_pct'] is not None else '—'}%")


@sla_cli.command("backfill")
def backfill_command() -> None:
    """Start SLA clocks for open tickets that have none (after a bulk import or seed)."""
    from helpdesk.extensions import db
    from helpdesk.sla import service

    started = time.perf_counter()
    made = service.backfill_clocks(db.session)
    click.echo(f"clocks created: {made} in {time.perf_counter() - started:.1f} s")


COMMANDS = [sla_cli]
