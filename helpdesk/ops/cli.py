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



privacy_cli = click.Group("privacy", help="Personal-data duties (APPI): export, anonymise, retention.")


def _print_report(report, as_json: bool) -> None:
    import json

    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    prefix = "would change" if report.dry_run else "changed"
    click.echo(f"{prefix}: " + (", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "nothing"))
    if report.tickets:
        click.echo("tickets: " + " ".join(report.tickets[:50]) + (" …" if len(report.tickets) > 50 else ""))
    for item in report.previews[:10]:
        click.echo(f"  {item['field']}: {item['after'][:80]!r}")


@privacy_cli.command("export")
@click.argument("person")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="zip file to write")
@with_appcontext
def privacy_export(person: str, out: str) -> None:
    """Write everything held about PERSON (e-mail or user id) as person.json + files into a zip."""
    from helpdesk import audit
    from helpdesk.extensions import db
    from helpdesk.ops import privacy
    from helpdesk.ops.storage import storage_for

    try:
        user = privacy.find_person(db.session, person)
    except privacy.PrivacyError as exc:
        raise click.ClickException(str(exc))
    doc, files = privacy.export_person(db.session, storage_for(current_app), user)
    with open(out, "wb") as fh:
        fh.write(privacy.export_zip(doc, files))
    audit.record(db.session, audit.Actor.system("cli"), "privacy.exported", "user", user.id,
                 {"tickets": len(doc["tickets"]), "files": len(files)})
    db.session.commit()
    click.echo(f"exported user {user.id}: {len(doc['tickets'])} tickets, {len(files)} files -> {out}")


@privacy_cli.command("anonymise")
@click.argument("person")
@click.option("--dry-run", is_flag=True, help="show what would change, change nothing")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def privacy_anonymise(person: str, dry_run: bool, as_json: bool) -> None:
    """Anonymise PERSON (e-mail or user id): account, their tickets' text and files, mentions elsewhere."""
    from helpdesk import audit
    from helpdesk.extensions import db
    from helpdesk.ops import privacy
    from helpdesk.ops.storage import storage_for

    try:
        user = privacy.find_person(db.session, person)
        report = privacy.anonymise_person(db.session, storage_for(current_app), user.id,
                                          audit.Actor.system("cli"), dry_run=dry_run)
    except privacy.PrivacyError as exc:
        raise click.ClickException(str(exc))
    _print_report(report, as_json)


@privacy_cli.command("retention")
@click.option("--years", type=float, envvar="RETENTION_YEARS", required=True, show_envvar=True,
              help="closed tickets closed longer ago than this are anonymised")
@click.option("--dry-run", is_flag=True, help="show what would change, change nothing")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def privacy_retention(years: float, dry_run: bool, as_json: bool) -> None:
    """Anonymise closed tickets older than --years (cron: daily; idempotent)."""
    from helpdesk import audit
    from helpdesk.extensions import db
    from helpdesk.ops import privacy
    from helpdesk.ops.storage import storage_for

    try:
        report = privacy.apply_retention(db.session, storage_for(current_app), years,
                                         audit.Actor.system("retention"), dry_run=dry_run)
    except privacy.PrivacyError as exc:
        raise click.ClickException(str(exc))
    _print_report(report, as_json)


storage_cli = click.Group("storage", help="Attachment storage: local folder or S3-compatible object store.")


@storage_cli.command("migrate")
@click.option("--from", "source", type=click.Choice(["local", "s3"]), default="local", show_default=True)
@click.option("--to", "target", type=click.Choice(["local", "s3"]), default="s3", show_default=True)
@click.option("--dry-run", is_flag=True, help="count what would be copied, copy nothing")
@with_appcontext
def storage_migrate(source: str, target: str, dry_run: bool) -> None:
    """Copy every attachment the database refers to from one storage to the other (checksums verified;
    files already there are skipped, so it can be run again). Then set ATTACHMENT_STORAGE=<to>."""
    from helpdesk import audit
    from helpdesk.extensions import db
    from helpdesk.ops.storage import build_storage, migrate_storage

    if source == target:
        raise click.BadParameter("--from and --to must differ", param_hint="--to")
    try:
        result = migrate_storage(db.session, build_storage(current_app, source), build_storage(current_app, target),
                                 dry_run=dry_run, progress=click.echo)
    except (OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    if not dry_run:
        audit.record(db.session, audit.Actor.system("cli"), "storage.migrated", "attachment", None,
                     {"from": source, "to": target, **result})
        db.session.commit()
    click.echo(("would copy" if dry_run else "copied") + f" {result['copied']}, already there {result['skipped']}, "
               f"missing at the source {result['missing']}, checksum mismatch {result['mismatched']}")
    if result["missing"] or result["mismatched"]:
        raise SystemExit(1)


COMMANDS = [backup_cli, restore_cli, privacy_cli, storage_cli]
