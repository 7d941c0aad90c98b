"""`helpdesk api …`: tokens and webhook retries from the command line."""
from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext

from helpdesk.audit import Actor


@click.group("api")
def api_cli() -> None:
    """JSON API: tokens, webhooks."""


@api_cli.group("token")
def token_group() -> None:
    """API tokens."""


@token_group.command("create")
@click.option("--name", required=True, help="Name of the integration (unique)")
@click.option("--user", "user_email", required=True, help="Login id of the user the token acts as")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="read, tickets:write, problems:write, admin (repeat or space-separate)")
@click.option("--expires-in-days", type=int, default=None, help="Days until the token expires (default: never)")
@with_appcontext
def token_create(name: str, user_email: str, scopes: tuple[str, ...], expires_in_days: int | None) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from helpdesk.api import service
    from helpdesk.extensions import db

    scope_list = [s for item in scopes for s in item.replace(",", " ").split()]
    try:
        created = service.create_token(db.session, name=name, user_email=user_email, scopes=scope_list,
                                       expires_in_days=expires_in_days, actor=Actor.system("cli"))
    except service.ApiServiceError as exc:
        db.session.rollback()
        for fieldname, messages in exc.field_errors.items():
            for message in messages:
                click.echo(f"error: {fieldname}: {message}", err=True)
        raise SystemExit(2)
    click.echo(created.plaintext)
    click.echo(f"token {created.token.name!r} ({created.token.prefix}…) for {user_email}, scopes: "
               f"{created.token.scopes}; store it now, it is not shown again", err=True)


@token_group.command("revoke")
@click.option("--name", required=True)
@with_appcontext
def token_revoke(name: str) -> None:
    from sqlalchemy import select

    from helpdesk.api import service
    from helpdesk.api.models import ApiToken
    from helpdesk.extensions import db

    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == name))
    if token_id is None:
        raise click.ClickException(f"no token named {name!r}")
    service.revoke_token(db.session, token_id, Actor.system("cli"))
    click.echo(f"revoked {name}")


@token_group.command("list")
@with_appcontext
def token_list() -> None:
    from helpdesk.api import service
    from helpdesk.extensions import db

    for t in service.list_tokens(db.session):
        click.echo(f"{t.name}\t{t.prefix}…\t{t.user.email if t.user else '-'}\t{t.scopes}\t{t.state()}")


@api_cli.command("webhooks-sweep")
@with_appcontext
def webhooks_sweep() -> None:
    """Deliver webhooks that are due (retries with backoff) through the outbox dispatcher, right here."""
    from helpdesk.notify.jobs import deliver_due

    click.echo(f"sent {deliver_due(route='webhook')} webhook deliveries")


@api_cli.command("purge-idempotency")
@click.option("--days", type=int, default=7)
@with_appcontext
def purge_idempotency(days: int) -> None:
    """Forget stored Idempotency-Key answers older than N days."""
    from helpdesk.api import service
    from helpdesk.extensions import db

    click.echo(f"purged {service.purge_idempotency(db.session, dt.timedelta(days=days))}")


COMMANDS = [api_cli]
