"""User import in the browser: the uploaded file and its dry run kept server-side, then a confirmed job.

Flow: upload → `check_upload` runs the importer as a dry run and stores the file's bytes with the plan
(a row of `user_imports`, keyed by a random public id) → the admin reads the plan and confirms, ticking a
box when organisations are renamed → `confirm_import` queues `run_user_import(id)` after the commit → the
job imports the *stored* bytes (never a re-uploaded file), allowing exactly the renames that were shown,
and writes its progress to the row so the browser can poll it. The bytes are dropped when the job ends.
The parsing and the validation are the CLI's (accounts/importer.py).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import time
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update

from helpdesk import audit, i18n
from helpdesk.accounts import importer
from helpdesk.accounts.models import User, UserImport
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.extensions import db
from helpdesk.jobs import enqueue_after_commit

logger = logging.getLogger(__name__)

#: rows listed per table on the dry-run page (the counts are always complete)
DETAILS = 200
#: refused lines kept with the plan and the result (the count is always complete)
MAX_ERRORS_KEPT = 5000
#: an unconfirmed dry run (and its file) is deleted after this long
CHECK_TTL = dt.timedelta(hours=24)
#: seconds between two progress writes of a running job
PROGRESS_EVERY = 0.5


class ImportConfirmError(Exception):
    """The dry run cannot be confirmed (already confirmed, expired, renames not acknowledged)."""


def _plan(result: importer.ImportResult) -> dict[str, Any]:
    return {"counts": result.counts(), "errors": _kept_errors(result),
            "errors_total": len(result.errors), "org_renames": result.org_renames, "orgs_new": result.orgs_new,
            "created_users": result.created_users, "updated_users": result.updated_users}


def _kept_errors(result: importer.ImportResult) -> list:
    # Kept as message id + parameters, so the pages show them in the reader's language.
    return [[line, i18n.dump(message)] for line, message in result.errors[:MAX_ERRORS_KEPT]]


def refused_rows(source: dict | None) -> list[tuple[int, str]]:
    """The refused lines of a plan or result as (line, reason in the current language)."""
    return [(line, i18n.render(message)) for line, message in (source or {}).get("errors", [])]


def for_display(source: dict | None) -> dict:
    """A plan or result with its refused-line reasons in the current language."""
    return {**(source or {}), "errors": refused_rows(source)}


def find(session, public_id: str) -> UserImport | None:
    return session.scalar(select(UserImport).where(UserImport.public_id == public_id))


def purge_expired(session, now: dt.datetime | None = None) -> int:
    """Delete unconfirmed dry runs older than CHECK_TTL (their files hold personal data)."""
    cutoff = (now or utcnow()) - CHECK_TTL
    return session.execute(delete(UserImport).where(UserImport.status == "checked",
                                                    UserImport.created_at < cutoff)).rowcount or 0


def check_upload(session, data: bytes, filename: str, actor: Actor) -> UserImport:
    """Dry-run an uploaded file and keep it with its plan; raises importer.ImportFileError for a bad file."""
    started = time.perf_counter()
    result = importer.import_users(session, data, actor=actor, dry_run=True, details=DETAILS, source=filename)
    seconds = round(time.perf_counter() - started, 2)
    purge_expired(session)
    plan = _plan(result)
    plan["seconds"] = seconds
    row = UserImport(public_id=secrets.token_urlsafe(16)[:22], created_by_id=actor.user_id, filename=filename[:255],
                     data=data, size=len(data), sha256=hashlib.sha256(data).hexdigest(), encoding=result.encoding,
                     status="checked", plan=plan)
    session.add(row)
    session.flush()
    audit.record(session, actor, "users.import_checked", "user_import", row.public_id,
                 {"file": row.filename, "bytes": row.size, "sha256": row.sha256, **result.counts(),
                  "organisation_renames": [[r["code"], r["old"], r["new"]] for r in result.org_renames[:200]]},
                 summary=f"{row.filename}: +{result.created} ~{result.updated} x{result.failed}")
    session.commit()
    return row


def confirm_import(session, public_id: str, actor: Actor, renames_ok: bool) -> UserImport:
    """Queue the import of a checked file (after the commit); renames must have been acknowledged."""
    row = session.scalar(select(UserImport).where(UserImport.public_id == public_id).with_for_update())
    if row is None:
        raise ImportConfirmError(_l("この確認結果は見つかりません。もう一度ファイルをアップロードしてください。"))
    if row.status != "checked":
        raise ImportConfirmError(_l("この取り込みは既に実行されています。"))
    if row.created_at < utcnow() - CHECK_TTL or row.data is None:
        raise ImportConfirmError(_l("確認から時間が経ちすぎています。もう一度ファイルをアップロードしてください。"))
    renames = row.plan.get("org_renames") or []
    if renames and not renames_ok:
        raise ImportConfirmError(_l("組織名が変わる組織があります。変更内容を確認し、チェックを入れてから実行してください。"))
    counts = row.plan["counts"]
    row.confirmed_renames = {r["code"]: [r["old"], r["new"]] for r in renames}
    row.status = "queued"
    row.confirmed_by_id = actor.user_id
    row.confirmed_at = utcnow()
    row.total = max(1, counts["lines"] + 2 * counts["created"] + counts["updated"])
    row.done = 0
    audit.record(session, actor, "users.import_confirmed", "user_import", row.public_id,
                 {"file": row.filename, "sha256": row.sha256, "created": counts["created"],
                  "updated": counts["updated"], "failed": counts["failed"],
                  "organisation_renames": [[c, *names] for c, names in row.confirmed_renames.items()][:200]},
                 summary=row.filename)
    enqueue_after_commit(session, run_user_import, row.id)
    session.commit()
    return row


class _Progress:
    """Writes the job's progress to its row on a connection of its own (committed at once, so visible to
    the polling page while the import's transaction is still open); throttled. Not on SQLite, whose one
    writer is the import itself (there the job runs in the request: the page shows it done)."""

    def __init__(self, import_id: int, total: int):
        self.import_id, self.total, self.done, self.last = import_id, total, 0, 0.0
        bind = db.session.get_bind()
        self.conn = None
        if bind.dialect.name != "sqlite":
            self.conn = getattr(bind, "engine", bind).connect()

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.conn is None or now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        try:
            self.conn.execute(update(UserImport).where(UserImport.id == self.import_id)
                              .values(done=min(self.done, self.total - 1)))
            self.conn.commit()
        except Exception:  # progress is a courtesy: never fail the import for it
            logger.warning("progress write for import %s failed", self.import_id, exc_info=True)
            self.conn.rollback()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def run_user_import(import_id: int) -> None:
    """The job: import a confirmed file's stored bytes; idempotent (only a queued row is run)."""
    session = db.session
    claimed = session.execute(update(UserImport).where(UserImport.id == import_id, UserImport.status == "queued")
                              .values(status="running", started_at=utcnow(), done=0)).rowcount
    session.commit()
    if not claimed:
        return
    row = session.get(UserImport, import_id)
    admin = session.get(User, row.confirmed_by_id) if row.confirmed_by_id else None
    actor = Actor.for_user(admin) if admin else Actor.system("job:user-import")
    data, filename, renames, total = row.data, row.filename, dict(row.confirmed_renames or {}), row.total
    public_id = row.public_id
    progress = _Progress(import_id, total)
    try:
        result = importer.import_users(session, data, actor=actor, source=filename, progress=progress,
                                       confirmed_renames=renames,
                                       audit_detail={"import_id": public_id, "via": "browser"})
    except Exception as exc:
        session.rollback()
        # Kept as Japanese text (a job has no reader); the progress page translates the fixed message.
        message = str(exc) if isinstance(exc, importer.ImportFileError) else str(
            _l("取り込み中にエラーが発生したため、何も登録していません。管理者に連絡してください。"))
        logger.exception("user import %s failed", public_id)
        session.execute(update(UserImport).where(UserImport.id == import_id).values(
            status="failed", error=message, finished_at=utcnow(), data=None))
        session.commit()
        return
    finally:
        progress.close()
    session.execute(update(UserImport).where(UserImport.id == import_id).values(
        status="done", done=total, finished_at=utcnow(), data=None,
        result={"counts": result.counts(), "errors": _kept_errors(result),
                "errors_total": len(result.errors), "org_renames": result.org_renames}))
    session.commit()


def status_of(row: UserImport) -> dict[str, Any]:
    """What the progress endpoint answers."""
    body: dict[str, Any] = {"status": row.status, "done": row.done, "total": row.total, "percent": row.percent}
    if row.status == "done" and row.result:
        body["counts"] = row.result["counts"]
    if row.status == "failed":
        body["error"] = row.error
    return body
