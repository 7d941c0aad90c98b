"""Ticket commands: `helpdesk import-tickets FILE.jsonl` and `helpdesk tickets auto-close`."""
from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import bindparam, insert, select, update

from helpdesk import audit
from helpdesk.accounts.models import Organisation, User
from helpdesk.audit import Actor
from helpdesk.common import ORG_KINDS, TOKYO, utcnow
from helpdesk.text import clean_input, normalize
from helpdesk.tickets.models import CHANNELS, PRIORITIES, STATUSES, Category, Comment, Ticket, TicketEvent

REQUIRED = ("external_id", "subject", "body", "org_code", "org_kind", "channel", "created_at")
CHUNK = 2000


@dataclass
class ImportSummary:
    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    organisations_created: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "organisations_created": self.organisations_created,
                "errors": len(self.errors), "warnings": len(self.warnings)}


def _parse_time(value: Any, key: str) -> dt.datetime:
    """ISO 8601; a value without an offset is Japan time (the desk's zone)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} は ISO 8601 の日時で指定してください（例: 2026-04-01T09:30:00+09:00）")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{key} の日時「{value[:40]}」を読めません（例: 2026-04-01T09:30:00+09:00）") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=TOKYO)
    return parsed.astimezone(dt.timezone.utc)


def validate_record(obj: Any, categories: set[str]) -> dict[str, Any]:
    """Check one JSON object and return clean values; ValueError names the first problem."""
    if not isinstance(obj, dict):
        raise ValueError("1行に1つの JSON オブジェクト（{...}）が必要です")
    missing = [k for k in REQUIRED if k not in obj or obj[k] is None]
    if missing:
        raise ValueError("必須項目がありません: " + ", ".join(missing))
    for key in ("external_id", "subject", "body", "org_code", "org_kind", "channel"):
        if not isinstance(obj[key], (str, int)) or isinstance(obj[key], bool):
            raise ValueError(f"{key} は文字列で指定してください")
    rec: dict[str, Any] = {}
    rec["external_id"] = clean_input(str(obj["external_id"]), 101)
    if not rec["external_id"] or len(rec["external_id"]) > 100:
        raise ValueError("external_id は1〜100文字で指定してください")
    rec["subject"] = clean_input(str(obj["subject"]), 300)
    if not rec["subject"]:
        raise ValueError("subject が空です")
    rec["body"] = clean_input(str(obj["body"]), 100_000)
    rec["org_code"] = clean_input(str(obj["org_code"]), 33)
    if not rec["org_code"] or len(rec["org_code"]) > 32:
        raise ValueError("org_code は1〜32文字で指定してください")
    rec["org_kind"] = str(obj["org_kind"]).strip()
    if rec["org_kind"] not in ORG_KINDS:
        raise ValueError(f"org_kind「{rec['org_kind'][:30]}」は使えません（{', '.join(ORG_KINDS)}）")
    rec["channel"] = str(obj["channel"]).strip()
    if rec["channel"] not in CHANNELS:
        raise ValueError(f"channel「{rec['channel'][:30]}」は使えません（{', '.join(CHANNELS)}）")
    rec["created_at"] = _parse_time(obj["created_at"], "created_at")
    email = obj.get("requester_email")
    if email not in (None, ""):
        if not isinstance(email, str) or "@" not in email or len(email) > 254:
            raise ValueError("requester_email がメールアドレスの形式ではありません")
        rec["requester_email"] = email.strip().lower()
    else:
        rec["requester_email"] = None
    category = obj.get("category")
    if category not in (None, ""):
        if not isinstance(category, str) or category not in categories:
            raise ValueError(f"category「{str(category)[:40]}」はありません（{', '.join(sorted(categories))}）")
    rec["category"] = category or None
    priority = obj.get("priority") or "P3"
    if priority not in PRIORITIES:
        raise ValueError(f"priority「{str(priority)[:10]}」は使えません（P1〜P4）")
    rec["priority"] = priority
    status = obj.get("status") or "new"
    if status not in STATUSES:
        raise ValueError(f"status「{str(status)[:20]}」は使えません（{', '.join(STATUSES)}）")
    rec["status"] = status
    resolved = obj.get("resolved_at")
    rec["resolved_at"] = _parse_time(resolved, "resolved_at") if resolved not in (None, "") else None
    if rec["resolved_at"] and rec["resolved_at"] < rec["created_at"]:
        raise ValueError("resolved_at が created_at より前です")
    return rec


def import_tickets(session, lines, *, progress=None, actor: Actor | None = None) -> ImportSummary:
    """Import JSONL lines (an iterable of str); idempotent on external_id; errors are per line."""
    actor = actor or Actor.system("import-tickets")
    summary = ImportSummary()
    categories = {c.code: c.id for c in session.scalars(select(Category))}
    batch: list[tuple[int, dict]] = []
    for number, line in enumerate(lines, start=1):
        summary.lines = number
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            summary.errors.append((number, f"JSON として読めません（{exc.msg}、{exc.colno}文字目）"))
            continue
        try:
            batch.append((number, validate_record(obj, set(categories))))
        except ValueError as exc:
            summary.errors.append((number, str(exc)))
            continue
        if len(batch) >= CHUNK:
            _import_batch(session, batch, categories, summary, actor)
            batch = []
            if progress:
                progress(1)
    if batch:
        _import_batch(session, batch, categories, summary, actor)
    audit.record(session, actor, "tickets.imported", "ticket", None, summary.as_dict())
    session.commit()
    return summary


def _import_batch(session, batch, categories: dict[str, int], summary: ImportSummary, actor: Actor) -> None:
    # A later line with the same external_id wins (as a re-import would).
    latest: dict[str, tuple[int, dict]] = {}
    for number, rec in batch:
        latest[rec["external_id"]] = (number, rec)
    codes = {rec["org_code"] for _, rec in latest.values()}
    orgs = {o.code: o for o in session.scalars(select(Organisation).where(Organisation.code.in_(codes)))}
    new_orgs = []
    for number, rec in latest.values():
        if rec["org_code"] not in orgs:
            org = Organisation(code=rec["org_code"], name=rec["org_code"], kind=rec["org_kind"])
            orgs[rec["org_code"]] = org
            new_orgs.append(org)
    if new_orgs:
        session.add_all(new_orgs)
        session.flush()
        summary.organisations_created += len(new_orgs)
        for org in new_orgs:
            audit.record(session, actor, "organisation.created", "organisation", org.id,
                         {"code": org.code, "kind": org.kind, "source": "import-tickets"})
    emails = {rec["requester_email"] for _, rec in latest.values() if rec["requester_email"]}
    users = dict(session.execute(select(User.email, User.id).where(User.email.in_(emails))).all()) if emails else {}
    existing = {t.external_id: t for t in session.execute(
        select(Ticket.id, Ticket.external_id, Ticket.subject, Ticket.body, Ticket.organisation_id, Ticket.channel,
               Ticket.category_id, Ticket.priority, Ticket.status, Ticket.resolved_at, Ticket.closed_at, Ticket.requester_id,
               Ticket.created_at, Ticket.role)
        .where(Ticket.external_id.in_(list(latest)))).all()}
    inserts, updates, events = [], [], []
    now = utcnow()
    for external_id, (number, rec) in latest.items():
        org = orgs[rec["org_code"]]
        requester_id = users.get(rec["requester_email"]) if rec["requester_email"] else None
        if rec["requester_email"] and requester_id is None:
            summary.warnings.append((number, f"requester_email「{rec['requester_email']}」の利用者がいないため、依頼者なしで取り込みました"))
        status = rec["status"]
        resolved_at = rec["resolved_at"] or (rec["created_at"] if status in ("resolved", "closed") else None)
        values = dict(subject=rec["subject"], body=rec["body"], organisation_id=org.id, role=org.kind,
                      channel=rec["channel"], category_id=categories.get(rec["category"]) if rec["category"] else None,
                      priority=rec["priority"], status=status, resolved_at=resolved_at,
                      closed_at=resolved_at if status == "closed" else None, requester_id=requester_id,
                      created_at=rec["created_at"])
        old = existing.get(external_id)
        if old is None:
            values.update(external_id=external_id, tier="L1", search_text=normalize(rec["subject"] + "\n" + rec["body"]),
                          version=1, updated_at=max(rec["created_at"], resolved_at or rec["created_at"]),
                          resolved_on_first_contact=False)
            inserts.append(values)
            continue
        changed = {k: v for k, v in values.items() if getattr(old, k) != v}
        if not changed:
            summary.unchanged += 1
            continue
        updates.append((old.id, values, changed, old))
    if inserts:
        table = Ticket.__table__
        rows = session.execute(insert(table).returning(table.c.id, table.c.external_id), inserts).all()
        ids = {external_id: ticket_id for ticket_id, external_id in rows}
        for values in inserts:
            ticket_id = ids[values["external_id"]]
            events.append(dict(ticket_id=ticket_id, at=values["created_at"], actor_id=None, actor_label=actor.label,
                               kind="created", before=None, after=values["channel"],
                               detail={"external_id": values["external_id"], "source": "import"}))
            if values["status"] != "new":
                events.append(dict(ticket_id=ticket_id, at=values["resolved_at"] or values["created_at"],
                                   actor_id=None, actor_label=actor.label, kind="status", before="new",
                                   after=values["status"], detail={"reason": "import"}))
        summary.created += len(inserts)
    for ticket_id, values, changed, old in updates:
        comments = session.scalars(select(Comment.body).where(Comment.ticket_id == ticket_id).order_by(Comment.id)).all()
        values = dict(values, search_text=normalize("\n".join([values["subject"], values["body"], *comments])),
                      updated_at=now)
        session.execute(update(Ticket.__table__).where(Ticket.__table__.c.id == ticket_id)
                        .values(version=Ticket.__table__.c.version + 1, **values))
        events.append(dict(ticket_id=ticket_id, at=now, actor_id=None, actor_label=actor.label, kind="import",
                           before=None, after=None,
                           detail={"external_id": getattr(old, "external_id"), "changed": sorted(changed)}))
        summary.updated += 1
    if events:
        session.execute(insert(TicketEvent.__table__), events)
    session.commit()
    # Objects loaded earlier in this session must not hide the bulk changes.
    session.expire_all()


@click.command("import-tickets")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@with_appcontext
def import_tickets_cli(path: str, as_json: bool) -> None:
    """Import tickets from a JSONL file (idempotent on external_id; errors reported per line)."""
    from helpdesk.cli import ensure_db
    from helpdesk.extensions import db
    from helpdesk.tickets.service import ensure_categories

    ensure_db()
    ensure_categories(db.session)
    db.session.commit()
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8-sig")
    try:
        total = None if path == "-" else sum(1 for _ in open(path, encoding="utf-8-sig"))
        with click.progressbar(length=(total or 0) // CHUNK + 1, label="importing", file=sys.stderr,
                               show_pos=True) as bar:
            summary = import_tickets(db.session, stream, progress=bar.update)
            bar.update(1)
    finally:
        if stream is not sys.stdin:
            stream.close()
    _refresh_insights()
    for number, message in summary.errors:
        click.echo(f"line {number}: error: {message}", err=True)
    for number, message in summary.warnings:
        click.echo(f"line {number}: warning: {message}", err=True)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        click.echo(f"lines: {summary.lines}, created: {summary.created}, updated: {summary.updated}, "
                   f"unchanged: {summary.unchanged}, organisations created: {summary.organisations_created}, "
                   f"errors: {len(summary.errors)}, warnings: {len(summary.warnings)}")
    if summary.errors and not (summary.created or summary.updated or summary.unchanged):
        sys.exit(1)


def _refresh_insights() -> None:
    """Let insights know tickets arrived (it also runs its own job)."""
    from helpdesk.insights.service import on_tickets_imported
    from helpdesk.jobs import enqueue

    enqueue(on_tickets_imported, queue="insights")


@click.group("tickets")
def tickets_cli() -> None:
    """Ticket maintenance commands."""


@tickets_cli.command("auto-close")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="close tickets resolved more than this many days ago (default TICKET_AUTOCLOSE_DAYS)")
@with_appcontext
def auto_close_cmd(days: int | None) -> None:
    """Close resolved tickets after N days without a reply."""
    from helpdesk.tickets.jobs import auto_close

    n = auto_close(days or current_app.config.get("TICKET_AUTOCLOSE_DAYS", 7))
    click.echo(f"closed: {n}")


COMMANDS = [import_tickets_cli, tickets_cli]
