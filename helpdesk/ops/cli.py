"""`helpdesk backup`, `helpdesk restore` (and the other operations commands)."""
from __future__ import annotations

import datetime as dt

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("backup")
@click.argument("folder", required=False)
@with_appcontext
def backup_cli(folder: str | None) -> None:
    """Back up the database, every attachment and a manifest with checksums into FOLDER (new or empty)."""
    from helpdesk import audit
    from helpdesk.extensions import db
    from helpdesk.ops import backup
    from helpdesk.ops.storage import storage_for

    folder = folder or f"helpdesk-backup-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    try:
        manifest = backup.backup(db.engine, storage_for(current_app), folder)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc))
    audit.record(db.session, audit.Actor.system("cli"), "backup.created", "backup", None,
                 {"folder": str(folder), "counts": manifest["counts"],
                  "attachments": len(manifest["attachments"]), "missing": len(manifest["missing_attachments"])})
    db.session.commit()
    counts = manifest["counts"]
    click.echo(f"backup written to {folder}: {counts['tickets']} tickets, {counts['ticket_events']} events, "
               f"{len(manifest['attachments'])} attachments ({manifest['database']['kind']})")
    for row in manifest["missing_attachments"]:
        click.echo(f"warning: attachment {row['id']} ({row['stored_name']}) was missing from the storage", err=True)


@click.command("restore")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--verify-only", is_flag=True, help="check the checksums and exit")
@with_appcontext
def restore_cli(folder: str, verify_only: bool) -> None:
    """Restore a backup FOLDER into the configured (empty) database and attachment storage."""
    from helpdesk import audit
    from helpdesk.extensions import db
    from helpdesk.ops import backup
    from helpdesk.ops.storage import storage_for

    try:
        if verify_only:
            manifest = backup.verify(folder)
            click.echo(f"backup {folder} is intact ({len(manifest['attachments'])} attachments)")
            return
        manifest = backup.restore(db.engine, storage_for(current_app), folder)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc))
    db.session.remove()
    audit.record(db.session, audit.Actor.system("cli"), "backup.restored", "backup", None,
                 {"folder": str(folder), "created_at": manifest["created_at"], "counts": manifest["counts"]})
    db.session.commit()
    counts = manifest["counts"]
    click.echo(f"restored {counts['tickets']} tickets, {counts['ticket_events']} events, "
               f"{len(manifest['attachments'])} attachments from {folder}")


COMMANDS = [backup_cli, restore_cli]
