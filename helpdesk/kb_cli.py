"""`helpdesk kb …`: check the manual files, sync them into the database, suggest articles.

Registered on the top-level `helpdesk` command (helpdesk/cli.py), outside the domain packages, so
`helpdesk kb suggest` starts without building the Flask app or importing the web views: it reads the
manual files directly (issue 12: CLI start-up). `check` and `sync` load the app when they run.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from helpdesk.config import default_manuals_dir

ROLE_CHOICES = click.Choice(["municipality", "clinic", "wholesaler", "common"])


def _manuals_dir(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        return current_app.config["MANUALS_DIR"]
    except RuntimeError:  # no app context: the default next to the package
        return os.environ.get("MANUALS_DIR") or default_manuals_dir()


kb_cli = AppGroup("kb", help="Knowledge base: check, sync and suggest manual articles.")


@kb_cli.command("check", with_appcontext=False)
@click.option("--dir", "directory", default=None, help="Manuals directory (default: MANUALS_DIR).")
def check(directory: str | None) -> None:
    """Validate every manual file; exit code 1 and the list of errors on bad content."""
    from knowledge_base import load_directory

    directory = _manuals_dir(directory)
    articles, errors = load_directory(directory)
    for err in errors:
        click.echo(f"ERROR {err}", err=True)
    slugs = len({a.slug for a in articles})
    if errors:
        click.echo(f"{len(errors)} error(s) in {directory}", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(articles)} files, {slugs} articles in {directory}")


@kb_cli.command("sync")
@click.option("--dir", "directory", default=None, help="Manuals directory (default: MANUALS_DIR).")
def sync(directory: str | None) -> None:
    """Load the files into the database; a changed article gets a new version."""
    from helpdesk.extensions import db
    from helpdesk.manuals.service import sync_manuals

    summary = sync_manuals(db.session, _manuals_dir(directory))
    for err in summary.errors:
        click.echo(f"ERROR {err}", err=True)
    for name in summary.created:
        click.echo(f"created  {name} v1")
    for name in summary.updated:
        click.echo(f"updated  {name}")
    for name in summary.deactivated:
        click.echo(f"removed  {name}")
    click.echo(f"sync: {summary}")
    if summary.errors:
        sys.exit(1)


@kb_cli.command("suggest", with_appcontext=False)
@click.argument("text")
@click.option("--role", type=ROLE_CHOICES, default=None, help="The requester's role (its articles + common).")
@click.option("--limit", "limit", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--lang", type=click.Choice(["ja", "en"]), default=None, help="Default: detected from the text.")
@click.option("--json", "as_json", is_flag=True, help='Print [{"slug", "title", "score"}, …] best first.')
@click.option("--dir", "directory", default=None, help="Manuals directory (default: MANUALS_DIR).")
def suggest(text: str, role: str | None, limit: int, lang: str | None, as_json: bool, directory: str | None) -> None:
    """Suggest manual articles for a ticket text (straight from the files; no database needed)."""
    from knowledge_base import KnowledgeBase

    directory = _manuals_dir(directory)
    if not Path(directory).is_dir():
        raise click.ClickException(f"manuals directory not found: {directory}")
    kb = KnowledgeBase.load(directory, strict=False)
    hits = kb.suggest(text, role=role if role != "common" else None, k=limit, lang=lang)
    if as_json:
        click.echo(json.dumps([{"slug": h.slug, "title": h.title, "score": h.score} for h in hits], ensure_ascii=False))
        return
    if not hits:
        click.echo("no matching article")
    for h in hits:
        click.echo(f"{h.score:8.3f}  {h.slug:<28} [{h.role}/{h.lang}] {h.title}")

