"""`helpdesk insights …`: recurring groups, trend reports, refresh."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys

import click
from flask.cli import with_appcontext

from helpdesk.common import csv_safe


class _Date(click.ParamType):
    name = "DATE"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"「{value}」は日付ではありません（YYYY-MM-DD の形で指定してください）", param, ctx)


DATE = _Date()


@click.group("insights")
def insights_cli() -> None:
    """Recurring issues, trend reports and problems."""


@insights_cli.command("recurring")
@click.option("--since", type=DATE, help="first day (Tokyo), inclusive")
@click.option("--until", type=DATE, help="last day (Tokyo), inclusive")
@click.option("--json", "as_json", is_flag=True, help="print JSON (the stable contract)")
@with_appcontext
def recurring_cmd(since, until, as_json):
    """Group the tickets in the window afresh; print the recurring groups, largest first."""
    from helpdesk.extensions import db
    from helpdesk.insights import service

    if since and until and until < since:
        raise click.BadParameter("--until は --since 以降の日付にしてください", param_hint="--until")
    groups = service.compute_recurring(db.session, since, until)
    if as_json:
        click.echo(json.dumps(groups, ensure_ascii=False))
        return
    if not groups:
        click.echo("繰り返し発生している問い合わせは見つかりませんでした。")
    for g in groups:
        click.echo(f"{g['size']:5d}  {g['label']}  ({', '.join(g['top_terms'][:5])})")


@insights_cli.command("trends")
@click.option("--since", type=DATE, help="first day (Tokyo); default 12 weeks (week) or 30 days (day) ago")
@click.option("--until", type=DATE, help="last day (Tokyo); default today")
@click.option("--by", type=click.Choice(("category", "role", "org")), default="category", show_default=True)
@click.option("--period", type=click.Choice(("week", "day")), default="week", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON rows")
@click.option("--csv", "as_csv", is_flag=True, help="print CSV rows")
@with_appcontext
def trends_cmd(since, until, by, period, as_json, as_csv):
    """Ticket volume per period by category, role or organisation (from the refreshed rollup)."""
    from helpdesk.extensions import db
    from helpdesk.insights import trends

    if as_json and as_csv:
        raise click.UsageError("--json と --csv はどちらか一方だけ指定してください")
    if since and until and until < since:
        raise click.BadParameter("--until は --since 以降の日付にしてください", param_hint="--until")
    trends.ensure_rollups(db.session)
    rows = trends.trend_rows(db.session, by, period, since, until)
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["period", "by", "key", "count"])
        for r in rows:
            writer.writerow([csv_safe(r["period"]), csv_safe(r["by"]), csv_safe(r["key"]), r["count"]])
        sys.stdout.write(out.getvalue())
        return
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['period']}  {r['key']:<24} {r['count']:6d}")


@insights_cli.command("refresh")
@with_appcontext
def refresh_cmd():
    """Recompute the recurring groups and the trend rollup (the nightly job, run now)."""
    from helpdesk.insights.jobs import refresh_all

    result = refresh_all()
    click.echo(f"groups: {result['groups']['groups']} over {result['groups']['tickets']} tickets; "
               f"rollup rows: {result['rollup']['rows']}; reappeared: {result['reappeared']}; "
               f"tracker deliveries retried: {result['deliveries']}")


@insights_cli.command("deliver")
@with_appcontext
def deliver_cmd():
    """Retry development-tracker deliveries whose backoff has elapsed (for cron)."""
    from helpdesk.insights.jobs import deliver_due

    click.echo(f"retried: {deliver_due()}")


COMMANDS = [insights_cli]
