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


# --- desk calendar: hours per weekday and closed days (audited as the CLI) --------------------

_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@sla_cli.group("hours")
def hours_group() -> None:
    """Desk hours per weekday (the business calendar of every SLA due date)."""


def _print_hours() -> None:
    from helpdesk.extensions import db
    from helpdesk.sla import service

    settings = service.desk_settings(db.session)
    for i, name in enumerate(_WEEKDAY_NAMES):
        click.echo(f"{name}  {service.format_day_hours(settings['hours'].get(i, ())) or 'closed'}")
    click.echo(f"public holidays closed: {'yes' if settings['public_holidays'] else 'no'}")
    click.echo(f"year-end closure (12/29-1/3): {'yes' if settings['year_end_closure'] else 'no'}")


@hours_group.command("show")
def hours_show() -> None:
    """Print the desk hours per weekday."""
    _print_hours()


@hours_group.command("set")
@click.option("--mon", help='e.g. 09:00-18:00, "09:00-12:00,13:00-18:00" or closed')
@click.option("--tue")
@click.option("--wed")
@click.option("--thu")
@click.option("--fri")
@click.option("--sat")
@click.option("--sun")
@click.option("--public-holidays/--no-public-holidays", default=None, help="close on Japanese public holidays")
@click.option("--year-end/--no-year-end", default=None, help="close 12/29-1/3")
def hours_set(public_holidays: bool | None, year_end: bool | None, **days: str | None) -> None:
    """Change the hours of the weekdays given; the others keep theirs."""
    from helpdesk.audit import Actor
    from helpdesk.extensions import db
    from helpdesk.sla import service

    settings = service.desk_settings(db.session)
    hours = {i: list(settings["hours"].get(i, ())) for i in range(7)}
    for i, name in enumerate(_WEEKDAY_NAMES):
        if days.get(name) is not None:
            try:
                hours[i] = service.parse_day_hours(days[name])
            except service.SlaError as exc:
                raise click.BadParameter(str(exc), param_hint=f"--{name}")
    try:
        service.set_desk_hours(
            db.session, hours, Actor.system("cli"),
            public_holidays=settings["public_holidays"] if public_holidays is None else public_holidays,
            year_end_closure=settings["year_end_closure"] if year_end is None else year_end)
    except service.SlaError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc))
    _print_hours()


@sla_cli.group("closed-days")
def closed_days_group() -> None:
    """Extra days the desk is closed (besides weekends, public holidays and the year end)."""


def _date(value: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("日付は YYYY-MM-DD の形式で指定してください。", param_hint="DAY")


@closed_days_group.command("list")
@click.option("--since", help="YYYY-MM-DD (default: all)")
def closed_days_list(since: str | None) -> None:
    """Print the closed days, oldest first."""
    from helpdesk.extensions import db
    from helpdesk.sla import service

    for row in service.list_closed_days(db.session, since=_date(since) if since else None):
        click.echo(f"{row.day.isoformat()}  {row.reason}".rstrip())


@closed_days_group.command("add")
@click.argument("day")
@click.option("--reason", default="", help="shown on the settings page")
def closed_days_add(day: str, reason: str) -> None:
    """Close the desk on DAY (YYYY-MM-DD)."""
    from helpdesk.audit import Actor
    from helpdesk.extensions import db
    from helpdesk.sla import service

    try:
        row = service.add_closed_day(db.session, _date(day), reason, Actor.system("cli"))
    except service.SlaError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc))
    click.echo(f"closed day added: {row.day.isoformat()}")


@closed_days_group.command("remove")
@click.argument("day")
def closed_days_remove(day: str) -> None:
    """Open the desk again on DAY (YYYY-MM-DD)."""
    from helpdesk.audit import Actor
    from helpdesk.extensions import db
    from helpdesk.sla import service

    row = service.closed_day_on(db.session, _date(day))
    if row is None:
        raise click.ClickException(f"{day} は休業日として登録されていません。")
    service.remove_closed_day(db.session, row.id, Actor.system("cli"))
    click.echo(f"closed day removed: {day}")


@closed_days_group.command("import")
@click.argument("file", type=click.File("rb"))
def closed_days_import(file) -> None:
    """Add the all-day events of an iCalendar (.ics) file as closed days (a bad file changes nothing)."""
    from helpdesk.audit import Actor
    from helpdesk.extensions import db
    from helpdesk.sla import service

    try:
        result = service.import_closed_days(db.session, file.read(), Actor.system("cli"), filename=file.name)
    except service.SlaError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc))
    click.echo(f"closed days added: {result['added']}, already closed: {result['already_closed']}")


COMMANDS = [sla_cli]
