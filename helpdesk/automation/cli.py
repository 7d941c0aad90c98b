"""`helpdesk automation …`: the time-based pass (cron: `*/5 * * * * helpdesk automation run-timed`)."""
from __future__ import annotations

import json
import time

import click
from flask.cli import AppGroup

automation_cli = AppGroup("automation", help="Automation rules: run the time-based rules.")


@automation_cli.command("run-timed")
@click.option("--all", "force", is_flag=True, help="run every active time-based rule, due or not")
@click.option("--enqueue", is_flag=True, help="hand the pass to an RQ worker instead of running it here")
def run_timed_command(force: bool, enqueue: bool) -> None:
    """Run the due time-based rules (idempotent: a rule acts on a ticket once)."""
    from helpdesk import jobs as queue
    from helpdesk.automation import jobs
    from helpdesk.extensions import db

    if enqueue:
        ok = queue.enqueue("helpdesk.automation.jobs.run_timed_rules", queue="default")
        click.echo(json.dumps({"enqueued": bool(ok)}))
        return
    started = time.perf_counter()
    result = jobs.run_timed(db.session, force=force)
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["per_rule"] = {str(k): v for k, v in result["per_rule"].items()}
    click.echo(json.dumps(result))
