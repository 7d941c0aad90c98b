"""The `helpdesk` command: demo, init-db, seed, worker, plus each domain's commands."""
from __future__ import annotations

import os
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext



def _create_app() -> Flask:
    from helpdesk import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False, load_dotenv=False)
def cli() -> None:
    """VDS help desk: tickets, manuals and insights."""


# Commands that must start fast and need no app until they run: registered on the group itself, so
# FlaskGroup finds them without loading the app (and every view and model module behind it).
from helpdesk.kb_cli import kb_cli  # noqa: E402

cli.add_command(kb_cli)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "demo":
        os.environ.setdefault("HELPDESK_DEMO", "1")
    elif command not in ("run", "serve"):
        # CLI tools do not serve requests, so they may run without a production SECRET_KEY.
        os.environ.setdefault("HELPDESK_CLI", "1")
        if command in ("worker", "mail-in") and not os.environ.get("BASE_URL"):
            # They send mail whose links must point at the public address, never at a guess.
            sys.exit("BASE_URL is not set: export BASE_URL=https://<public host> before starting "
                     f"`helpdesk {command}`.")
    cli(prog_name="helpdesk")


def ensure_db() -> None:
    """Bring the database schema to the latest migration (cheap when already there)."""
    from flask_migrate import upgrade

    upgrade()


def register(app: Flask) -> None:
    """The application-wide commands; each domain's `init_app` adds its own (`helpdesk tickets …`)."""
    for command in (init_db, demo, seed, worker):
        app.cli.add_command(command)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema and the reference data (categories)."""
    from helpdesk.extensions import db
    from helpdesk.tickets.service import ensure_categories

    ensure_db()
    ensure_categories(db.session)
    db.session.commit()
    click.echo("database ready")


@click.command("seed")
@click.option("--orgs", type=click.IntRange(0, 2_000_000), default=0, show_default=True)
@click.option("--users", type=click.IntRange(0, 5_000_000), default=0, show_default=True)
@click.option("--tickets", type=click.IntRange(0, 20_000_000), default=0, show_default=True)
@click.option("--seed", "seed_value", type=int, default=1, show_default=True, help="random seed")
@with_appcontext
def seed(orgs: int, users: int, tickets: int, seed_value: int) -> None:
    """Generate realistic synthetic organisations, users and tickets (bulk inserts)."""
    import random
    import time

    from helpdesk.extensions import db
    from helpdesk.tickets.service import ensure_categories

    ensure_db()
    ensure_categories(db.session)
    db.session.commit()
    rng = random.Random(seed_value)
    started = time.perf_counter()
    from helpdesk.accounts import seed as accounts_seed
    from helpdesk.tickets import seed as tickets_seed

    if orgs or users:
        made = accounts_seed.seed_accounts(db.session, orgs=orgs, users=users, rng=rng, progress=click.echo)
        click.echo(f"organisations: {made['orgs']}, users: {made['users']}")
    if tickets:
        made = tickets_seed.seed_tickets(db.session, tickets, rng=rng, progress=click.echo)
        click.echo(f"tickets: {made}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=5000, type=click.IntRange(1, 65535), show_default=True, help="port to listen on")
@click.option("--no-serve", is_flag=True, help="prepare the database and exit")
@with_appcontext
def demo(host: str, port: int, no_serve: bool) -> None:
    """Create/upgrade the embedded DB, load manuals and demo data if empty, print logins, serve."""
    import time

    from helpdesk.demo import DEMO_PASSWORD, load_demo, prepare_insights
    from helpdesk.extensions import db
    from helpdesk.manuals.service import sync_manuals
    from helpdesk.serve import serve
    from helpdesk.tickets.service import ensure_categories

    started = time.perf_counter()
    if not os.environ.get("BASE_URL"):  # links in the demo's mails point at this server
        current_app.config["BASE_URL"] = f"http://{host}:{port}"
    from helpdesk.routing import trust_hosts

    if host in ("0.0.0.0", "::"):  # shown on a LAN: any name this machine has (mail links use BASE_URL anyway)
        current_app.config["TRUSTED_HOSTS"] = None
    else:
        trust_hosts(current_app, [host])
    ensure_db()
    ensure_categories(db.session)
    db.session.commit()
    summary = sync_manuals(db.session, current_app.config["MANUALS_DIR"])
    click.echo(f"manuals: {summary}")
    logins = load_demo(db.session)
    prepared = prepare_insights(db.session)
    if prepared["refreshed"]:
        click.echo("insights: recurring groups, trends and a sample problem computed")
    click.echo(f"ready in {time.perf_counter() - started:.1f} s")
    click.echo("")
    click.echo("Demo logins (password for every account: %s)" % DEMO_PASSWORD)
    for role, email in logins:
        click.echo(f"  {role:<14} {email}")
    click.echo("")
    if no_serve:
        return
    click.echo(f"Open http://{host}:{port}/ — press Ctrl+C to stop.", nl=True)
    sys.stdout.flush()
    serve(current_app._get_current_object(), host, port)


@click.command("worker")
@click.option("--queues", "-q", multiple=True, default=("default", "notify", "sla", "insights"), show_default=True)
@click.option("--burst", is_flag=True, help="exit when the queues are empty")
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run an RQ worker inside the app context (requires REDIS_URL)."""
    from rq import Queue

    from helpdesk import worker as resilient
    from helpdesk.extensions import db
    from helpdesk.jobs import redis_connection
    from helpdesk.worker import AppWorker

    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set: without Redis, jobs run in-process.")

    connection = redis_connection()
    if not burst:  # rows of a killed job are due in the database: hand them on within seconds
        from helpdesk.notify.jobs import start_sweeper

        start_sweeper(current_app._get_current_object())
    from helpdesk.notify import service as notify_service

    def on_connect() -> None:
        notify_service.requeue_due(db.session)  # mail left pending while Redis was down

    # Waits out Redis outages (at start too) with backoff instead of exiting; see helpdesk/worker.py.
    resilient.log_to_stderr()
    resilient.run(connection, lambda: AppWorker([Queue(name, connection=connection) for name in queues],
                                                connection=connection),
                  burst=burst, on_connect=on_connect)
