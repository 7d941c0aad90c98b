"""`helpdesk notify sweep` (cron, every minute) and `helpdesk mail-in` (the inbound e-mail channel)."""
from __future__ import annotations

import json
import logging
import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

notify_cli = AppGroup("notify", help="Outgoing mail and webhooks (the outbox).")


@notify_cli.command("sweep")
def sweep_command() -> None:
    """Queue pending reminders and re-enqueue every outbox row that is due (cron: * * * * *)."""
    from helpdesk.notify import jobs

    click.echo(json.dumps(jobs.sweep()))


@notify_cli.command("drain")
@click.option("--limit", type=click.IntRange(1, 100_000), default=500, show_default=True)
def drain_command(limit: int) -> None:
    """Deliver due mail right here over one SMTP connection (no Redis needed)."""
    from helpdesk.notify import jobs

    click.echo(f"sent: {jobs.deliver_due(route='email', limit=limit)}")


@notify_cli.command("stats")
def stats_command() -> None:
    """Outbox rows per state."""
    from helpdesk.extensions import db
    from helpdesk.notify import service

    click.echo(json.dumps(service.outbox_stats(db.session)))


@click.command("mail-in")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=click.IntRange(1, 65535))
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="ingest one .eml file and exit")
@with_appcontext
def mail_in_cli(host: str, port: int, path: str | None) -> None:
    """Receive mail over SMTP (aiosmtpd) and turn it into tickets and replies."""
    from helpdesk.extensions import db
    from helpdesk.notify.mailin import ingest_raw_mail, make_controller

    if path:
        with open(path, "rb") as fh:
            result = ingest_raw_mail(db.session, fh.read())
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    logging.basicConfig(level=logging.INFO)
    controller = make_controller(current_app._get_current_object(), host, port)
    controller.start()
    click.echo(f"mail-in listening on {host}:{port} — Ctrl+C to stop")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


COMMANDS = [notify_cli, mail_in_cli]
