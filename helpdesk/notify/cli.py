"""`helpdesk notify sweep` (cron, every minute), `helpdesk mail-in` (SMTP) and `helpdesk mail poll-imap` (IMAP)."""
from __future__ import annotations

import json
import logging
import os
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


mail_cli = AppGroup("mail", help="Inbound mail from a mailbox (IMAP polling).")


def _imap_settings(interval: float | None = None):
    from helpdesk.notify.imap import ImapConfigError, ImapSettings

    config = dict(current_app.config)
    if interval is not None:
        config["IMAP_INTERVAL"] = interval
    try:
        return ImapSettings.from_config(config)
    except ImapConfigError as exc:
        raise click.ClickException(str(exc)) from None


@mail_cli.command("poll-imap")
@click.option("--once", is_flag=True, help="one round, then exit (cron); exit status 1 if it failed")
@click.option("--interval", type=click.FloatRange(min=1), default=None,
              help="seconds between rounds (default IMAP_INTERVAL, 60)")
@click.option("--retry-failed", is_flag=True, help="put the messages set aside as failed back and exit")
def poll_imap_command(once: bool, interval: float | None, retry_failed: bool) -> None:
    """Import unseen mail from an IMAP mailbox as tickets and replies (the SMTP receiver's alternative)."""
    from helpdesk.notify import imap

    app = current_app._get_current_object()
    if not (os.environ.get("BASE_URL") or app.testing or app.config.get("HELPDESK_DEMO")):
        # Tickets created here send mail whose links must point at the public address, never at the
        # local fallback CLI tools get (like `helpdesk mail-in` and `helpdesk worker`, see helpdesk/cli.py).
        raise click.ClickException("BASE_URL is not set: export BASE_URL=https://<public host> before starting "
                                   "`helpdesk mail poll-imap`.")
    settings = _imap_settings(interval)
    logging.basicConfig(level=logging.INFO)
    if retry_failed:
        poller = imap.MailboxPoller(settings)
        try:
            click.echo(json.dumps({"requeued": poller.retry_failed()}))
        except (imap.imaplib.IMAP4.error, OSError) as exc:
            raise click.ClickException(f"{settings.where}: {exc}") from None
        finally:
            poller.close()
        return
    stop = threading.Event()
    if not once:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(f"polling {settings.where} every {settings.interval:g} s"
                   f"{' (IDLE between rounds)' if settings.idle else ''} — Ctrl+C to stop")
    def report(r) -> None:
        if once or r.as_dict() != imap.PollReport().as_dict():  # the loop stays quiet while nothing arrives
            click.echo(json.dumps(r.as_dict(), ensure_ascii=False))

    try:
        failed = imap.run(app, settings, once=once, stop=stop, on_report=report)
    except KeyboardInterrupt:
        failed = 0
    if once and failed:
        raise SystemExit(1)


@mail_cli.command("check-imap")
def check_imap_command() -> None:
    """Log in to the mailbox and print what waits there (unread, set aside as failed); changes nothing."""
    from helpdesk.notify import imap

    settings = _imap_settings()
    poller = imap.MailboxPoller(settings)
    try:
        click.echo(json.dumps(poller.status(), ensure_ascii=False))
    except (imap.imaplib.IMAP4.error, OSError) as exc:
        raise click.ClickException(f"{settings.where}: {exc}") from None
    finally:
        poller.close()


COMMANDS = [notify_cli, mail_in_cli, mail_cli]
