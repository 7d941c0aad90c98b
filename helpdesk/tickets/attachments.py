"""Attachments: type check by content, storage outside static under random names, scoped download.

Uploads are checked by their bytes, never by their name: PDF, PNG, JPEG, GIF, plain text / CSV
(UTF-8 or cp932 decodable, no binary control bytes) and Office Open XML spreadsheets / documents
(a zip with the right parts and no macros). The original name is kept only for display and the
download header; on disk a file has a random name under `UPLOAD_FOLDER`.

Visibility follows the ticket (`service.can_see`), and an attachment of an internal note is staff
only. Whoever may not see it gets 404, like every other ticket route.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from urllib.parse import quote

from flask import abort, current_app, has_app_context, send_file
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.auth import login_required, staff_required
from helpdesk.ops.storage import current_storage
from helpdesk.tickets.models import Attachment, Comment, Ticket
from helpdesk.tickets.service import NotFound, TicketError, can_see
from helpdesk.security import client_ip
from helpdesk.tickets.portal_forms import AgentUploadForm
from helpdesk.tickets.service import _event, add_comment, get_visible

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Most files a single form may carry (portal reply, new ticket, agent upload).
MAX_FILES = 10

#: kind -> (content type, canonical extension, extensions accepted as-is, label for messages)
TYPES = {
    "pdf": ("application/pdf", ".pdf", {".pdf"}, "PDF"),
    "png": ("image/png", ".png", {".png"}, "PNG画像"),
    "jpeg": ("image/jpeg", ".jpg", {".jpg", ".jpeg", ".jpe", ".jfif"}, "JPEG画像"),
    "gif": ("image/gif", ".gif", {".gif"}, "GIF画像"),
    "csv": ("text/csv; charset={charset}", ".csv", {".csv"}, "CSV"),
    "text": ("text/plain; charset={charset}", ".txt", {".txt", ".log", ".tsv", ".text"}, "テキスト"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx", {".xlsx"}, "Excel"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx", {".docx"}, "Word"),
}
ALLOWED_DESCRIPTION = _l("PDF、画像（PNG・JPEG・GIF）、テキスト・CSV、Excel（.xlsx）、Word（.docx）")


class AttachmentError(TicketError):
    """A refused file; the message says why in plain words and names the file."""


@dataclass
class CheckedFile:
    """An upload that passed every check, ready to be stored."""

    filename: str
    data: bytes
    content_type: str
    kind: str


# --- checks ---------------------------------------------------------------------------------

def max_bytes() -> int:
    if has_app_context():
        return int(current_app.config.get("ATTACHMENT_MAX_BYTES") or DEFAULT_MAX_BYTES)
    return DEFAULT_MAX_BYTES


def human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.0f} MB" if n % (1024 * 1024) == 0 else f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} B"


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"*/:<>?\\|]+')


def sanitize_filename(name: str | None) -> str:
    """A display name safe in a header and on any OS: no path, no control or reserved characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # browsers on Windows may send a full path
    name = _UNSAFE.sub("_", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cf", "Cc", "Cs", "Co"))
    name = name.strip().strip(".").strip()
    if not name:
        name = "file"
    if len(name) > 200:
        stem, ext = os.path.splitext(name)
        name = stem[:200 - len(ext[:20])] + ext[:20]
    return name


def _text_charset(data: bytes) -> str | None:
    """'utf-8' or 'shift_jis' (cp932) if the bytes are readable text, else None."""
    if b"\x00" in data:
        return None
    for charset, codec in (("utf-8", "utf-8-sig"), ("shift_jis", "cp932")):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f" for ch in text):
            return None
        return charset
    return None


def _office_kind(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, RuntimeError, EOFError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        return "macro"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "word/document.xml" in names:
        return "docx"
    return None


def detect_kind(data: bytes) -> tuple[str, str | None] | None:
    """(kind, text charset) from the bytes themselves, or None when the type is not allowed."""
    if data.startswith(b"%PDF-"):
        return "pdf", None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", None
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg", None
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif", None
    if data.startswith(b"PK\x03\x04"):
        kind = _office_kind(data)
        return (kind, None) if kind in ("xlsx", "docx") else None
    charset = _text_charset(data)
    if charset:
        return "text", charset
    return None


def check_file(filename: str | None, data: bytes, limit: int | None = None) -> CheckedFile:
    """Validate one file by size and content; AttachmentError explains a refusal."""
    name = sanitize_filename(filename)
    limit = limit or max_bytes()
    if not data:
        raise AttachmentError(_l("「%(name)s」は空のファイルです。中身のあるファイルを選んでください。", name=name))
    if len(data) > limit:
        raise AttachmentError(_l("「%(name)s」は大きすぎます（%(size)s）。1ファイル%(limit)sまでにしてください。",
                                 name=name, size=human_size(len(data)), limit=human_size(limit)))
    if data.startswith(b"PK\x03\x04") and _office_kind(data) == "macro":
        raise AttachmentError(_l("「%(name)s」はマクロを含むファイルのため送れません。"
                                 "マクロなしの形式（.xlsx / .docx）で保存し直してください。", name=name))
    found = detect_kind(data)
    if found is None:
        raise AttachmentError(_l("「%(name)s」は送れない種類のファイルです。送れるのは %(allowed)s です"
                                 "（ファイルの中身で判定しています）。", name=name, allowed=ALLOWED_DESCRIPTION))
    kind, charset = found
    stem, ext = os.path.splitext(name)
    if kind == "text" and ext.lower() == ".csv":
        kind = "csv"
    content_type, canonical, accepted, _label = TYPES[kind]
    if ext.lower() not in accepted:
        # The name must not make the OS open the file as something else (e.g. "run.bat" stays text).
        name = sanitize_filename(name + canonical)
    return CheckedFile(filename=name, data=data, content_type=content_type.format(charset=charset or "utf-8"),
                       kind=kind)


def read_upload(file_storage, limit: int | None = None) -> CheckedFile:
    """Read a werkzeug FileStorage (never more than the limit + 1 bytes) and check it."""
    limit = limit or max_bytes()
    data = file_storage.stream.read(limit + 1)
    name = sanitize_filename(file_storage.filename)
    if len(data) > limit:
        raise AttachmentError(_l("「%(name)s」は大きすぎます。1ファイル%(limit)sまでにしてください。", name=name,
                                 limit=human_size(limit)))
    return check_file(file_storage.filename, data, limit)


def uploaded_files(files) -> list:
    """The FileStorage objects a form really carries (browsers send one empty part for no file)."""
    return [f for f in (files or []) if f is not None and getattr(f, "filename", "")]


def check_uploads(files, limit: int | None = None) -> tuple[list[CheckedFile], list[str]]:
    """Check every file of a form; returns (accepted files, one message per refused file)."""
    files = uploaded_files(files)
    checked, errors = [], []
    if len(files) > MAX_FILES:
        return [], [str(_l("一度に送れるファイルは%(n)s個までです。", n=MAX_FILES))]
    for storage in files:
        try:
            checked.append(read_upload(storage, limit))
        except AttachmentError as exc:
            errors.append(str(exc))
    return checked, errors


# --- storage --------------------------------------------------------------------------------

def upload_folder() -> str:
    folder = current_app.config.get("UPLOAD_FOLDER") if has_app_context() else None
    if not folder:
        raise RuntimeError("UPLOAD_FOLDER is not configured")
    return folder


def stored_path(stored_name: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{32}", stored_name or ""):
        raise ValueError("bad stored name")
    return os.path.join(upload_folder(), stored_name[:2], stored_name)


class StorageError(RuntimeError):
    """The file store refused a write (disk full, permissions): nothing of the change is kept.

    Not a TicketError: callers that do not handle it (mail-in) fail as before, so the mail stays
    with the sender (451) instead of being refused for good.
    """


#: Shown next to the file field; the typed text stays in the form.
STORAGE_FAILED = _l("添付ファイルを保存できなかったため、受け付けていません（サーバー側の問題です）。"
                    "入力した内容は残っています。しばらくしてからもう一度送信するか、添付せずに送信してください。")

_WRITTEN_KEY = "helpdesk_written_attachments"


def _write(data: bytes) -> str:
    stored_name = secrets.token_hex(16)
    storage = current_storage()
    if storage.kind != "local":  # an object store (helpdesk/ops/storage.py); its errors are OSErrors too
        storage.write(stored_name, data)
        return stored_name
    path = stored_path(stored_name)
    tmp = f"{path}.{secrets.token_hex(4)}.part"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        _remove(tmp)
        raise
    return stored_name


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _write_tracked(session, data: bytes, ticket: Ticket) -> str:
    """Write a file for the session's transaction: a rollback deletes it again (see below)."""
    try:
        stored_name = _write(data)
    except OSError as exc:
        # Logged here, once, with its cause; the caller rolls back (which deletes the files this
        # transaction already wrote) and shows STORAGE_FAILED.
        current_app.logger.error("attachment storage refused a write for ticket %s (%s bytes): %s: %s",
                                 ticket.ref if ticket.id else "(new)", len(data), type(exc).__name__, exc)
        raise StorageError(STORAGE_FAILED) from exc
    storage = current_storage()
    session.info.setdefault(_WRITTEN_KEY, []).append(
        stored_path(stored_name) if storage.kind == "local" else (storage, stored_name))
    return stored_name


@event.listens_for(Session, "after_commit")
def _keep_written(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_WRITTEN_KEY, None)


@event.listens_for(Session, "after_transaction_end")
def _delete_written(session: Session, transaction) -> None:
    # The transaction ended without a commit (rollback, or the session closed): the rows naming
    # these files are gone, so are the files. A committed transaction's list is gone already.
    if transaction.parent is None and not transaction.nested:
        for path in session.info.pop(_WRITTEN_KEY, None) or ():
            if isinstance(path, tuple):  # (object store, stored name)
                try:
                    path[0].delete(path[1])
                except OSError:
                    pass
            else:
                _remove(path)


def store(session, ticket: Ticket, checked: CheckedFile, actor: Actor, *,
          comment_id: int | None = None) -> Attachment:
    """Write the file under a random name and add its row, an event and an audit entry (no commit)."""
    comment = None
    if comment_id is not None:
        comment = session.get(Comment, comment_id)
        if comment is None or comment.ticket_id != ticket.id:
            raise AttachmentError(_l("添付先の返信が見つかりません。"))
    stored_name = _write_tracked(session, checked.data, ticket)
    row = Attachment(ticket_id=ticket.id, comment_id=comment_id, filename=checked.filename,
                     stored_name=stored_name, content_type=checked.content_type, size=len(checked.data),
                     sha256=hashlib.sha256(checked.data).hexdigest(), uploaded_by_id=actor.user_id)
    session.add(row)
    session.flush()
    if comment is None or comment.is_public:
        # A file of an internal note stays out of the timeline events (the note itself is there),
        # so no listing of public events can ever name it.
        _event(session, ticket, actor, "attachment", None, checked.filename,
               {"attachment_id": row.id, "comment_id": comment_id, "size": row.size}, emit=False)
    audit.record(session, actor, "attachment.added", "attachment", row.id,
                 {"ticket": ticket.ref, "filename": row.filename, "size": row.size, "sha256": row.sha256,
                  "content_type": row.content_type, "comment_id": comment_id})
    return row


def save_upload(session, ticket: Ticket, file_storage, actor: Actor, comment_id: int | None = None,
                *, commit: bool = False) -> Attachment:
    """Check and store one uploaded FileStorage for `ticket`; AttachmentError when refused."""
    row = store(session, ticket, read_upload(file_storage), actor, comment_id=comment_id)
    if commit:
        session.commit()
    return row


def save_bytes(session, ticket: Ticket, filename: str, data: bytes, actor: Actor, comment_id: int | None = None,
               *, commit: bool = False) -> Attachment:
    """Check and store raw bytes (e.g. a mail attachment) for `ticket`; AttachmentError when refused."""
    row = store(session, ticket, check_file(filename, data), actor, comment_id=comment_id)
    if commit:
        session.commit()
    return row


def add_files(session, ticket_id: int, files: list[CheckedFile], actor: Actor, *, public: bool,
              note: str | None = None, commit: bool = True) -> Comment:
    """Attach checked files to a ticket through a reply or note that names them (agents' upload)."""
    if not files:
        raise AttachmentError(_l("添付するファイルを選んでください。"))
    body = (note or "").strip() or "添付ファイル: " + "、".join(f.filename for f in files)
    comment = add_comment(session, ticket_id, body, actor, public=public, commit=False)
    ticket = session.get(Ticket, ticket_id)
    for checked in files:
        store(session, ticket, checked, actor, comment_id=comment.id)
    if commit:
        session.commit()
    return comment


# --- visibility -----------------------------------------------------------------------------

def attachment_visible(session, user, row: Attachment) -> bool:
    ticket = session.get(Ticket, row.ticket_id)
    if ticket is None or not can_see(user, ticket):
        return False
    if row.comment_id is not None and not user.is_staff:
        comment = session.get(Comment, row.comment_id)
        if comment is None or not comment.is_public:
            return False
    return True


def get_visible_attachment(session, user, attachment_id: int) -> Attachment:
    row = session.get(Attachment, attachment_id)
    if row is None or not attachment_visible(session, user, row):
        raise NotFound(_l("添付ファイルが見つかりません。"))
    return row


def visible_attachments(session, user, ticket: Ticket) -> list[Attachment]:
    """The ticket's attachments `user` may download (internal-note files only for staff)."""
    stmt = select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)
    if not user.is_staff:
        public_comments = select(Comment.id).where(Comment.ticket_id == ticket.id, Comment.is_public.is_(True))
        stmt = stmt.where(Attachment.comment_id.is_(None) | Attachment.comment_id.in_(public_comments))
    return list(session.scalars(stmt))


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the RFC 5987 `filename*` for Japanese names."""
    name = sanitize_filename(filename)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r"[^A-Za-z0-9._ ()\[\]-]+", "_", ascii_name).strip(" _") or "file"
    stem, ext = os.path.splitext(name)
    if not os.path.splitext(ascii_name)[1] and ext.isascii():
        ascii_name += ext
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


# --- routes ---------------------------------------------------------------------------------

from helpdesk.extensions import db  # noqa: E402
from helpdesk.tickets import bp  # noqa: E402


@bp.get("/attachments/<int:attachment_id>")
@login_required
def attachment(attachment_id: int):
    """Download an attachment the user may see (404 otherwise), never rendered inline."""
    try:
        row = get_visible_attachment(db.session, current_user, attachment_id)
        path = stored_path(row.stored_name)
    except (NotFound, ValueError):
        abort(404)
    storage = current_storage()
    if storage.kind != "local":  # from the object store (any node can serve any file)
        data = storage.read(row.stored_name)
        if data is None:
            abort(404)
        response = send_file(io.BytesIO(data), mimetype=row.content_type, as_attachment=False,
                             conditional=False, etag=False, max_age=0)
    elif not os.path.exists(path):
        abort(404)
    else:
        response = send_file(path, mimetype=row.content_type, as_attachment=False, conditional=False,
                             etag=False, max_age=0)
    response.headers["Content-Disposition"] = content_disposition(row.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/tickets/<ref>/attachments")
@staff_required
def attachment_upload(ref: str):
    """Agents add files to a ticket as a public reply or an internal note (from `_attachments.html`)."""
    from flask import flash, redirect, request, url_for
    from flask_babel import gettext as _

    try:
        ticket = get_visible(db.session, current_user, ref)
    except NotFound:
        abort(404)
    back = url_for("tickets.detail", ref=ticket.ref) + "#attachments"
    form = AgentUploadForm()
    if not form.validate():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(back)
    checked, errors = check_uploads(request.files.getlist(form.files.name))
    if errors or not checked:
        for message in errors or [_("添付するファイルを選んでください。")]:
            flash(message, "error")
        return redirect(back)
    try:
        add_files(db.session, ticket.id, checked, Actor.for_user(current_user, client_ip()),
                  public=form.visibility.data == "public", note=form.note.data)
    except StorageError as exc:  # nothing kept (no note, no file): the page comes back with the note as typed
        from flask import g

        from helpdesk.tickets.views import _render_detail

        db.session.rollback()
        g.upload_error, g.upload_note = _(str(exc)), form.note.data or ""
        g.upload_public = form.visibility.data == "public"
        return _render_detail(db.session.get(Ticket, ticket.id), status=503)
    except TicketError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back)
    flash(_("%(n)d 件のファイルを添付しました。", n=len(checked)), "success")
    return redirect(back)
