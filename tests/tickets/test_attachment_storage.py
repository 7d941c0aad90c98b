"""Unwritable attachment storage (issue 13, point 15): a clear message, the typed text kept, nothing written.

Two real faults, no mocks: a storage folder that cannot be created (its parent is a regular file —
what a bad mount or permissions give; chmod would not stop root, who runs CI), and a write that fails
part-way through a file as on a full disk (the process's file-size limit RLIMIT_FSIZE, so the kernel
refuses the write with EFBIG; SIGXFSZ is ignored meanwhile). In the second case the first, small file
of the form is written before the second fails, and must be deleted again.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import resource
import signal

import flask_babel
import pytest
from sqlalchemy import func, select

from helpdesk.accounts.models import AuditLog
from helpdesk.tickets.attachments import STORAGE_FAILED
from helpdesk.tickets.models import Attachment, Comment, Ticket

SMALL = ("メモ.txt", "ログインできない時の画面の説明です。\n".encode("utf-8"))
LARGE = ("ログ.txt", ("2026-10-05 09:00 ERROR ログイン失敗\n" * 3000).encode("utf-8"))  # ~120 KB
LIMIT = 64 * 1024


@contextlib.contextmanager
def unwritable_folder(app, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    saved = app.config["UPLOAD_FOLDER"]
    app.config["UPLOAD_FOLDER"] = str(blocker / "uploads")
    try:
        yield
    finally:
        app.config["UPLOAD_FOLDER"] = saved


@contextlib.contextmanager
def disk_full_after(app, tmp_path, limit=LIMIT):
    """Writes beyond `limit` bytes per file fail (EFBIG), as they would on a full disk."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    saved = app.config["UPLOAD_FOLDER"]
    app.config["UPLOAD_FOLDER"] = str(folder)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield folder
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
        app.config["UPLOAD_FOLDER"] = saved


def _files_under(folder) -> list[str]:
    return [os.path.join(d, f) for d, _dirs, files in os.walk(folder) for f in files]


def _nonce(client, url="/portal/new") -> str:
    html = client.get(url).get_data(as_text=True)
    return re.search(r'name="nonce" type="hidden" value="([^"]+)"', html).group(1)


def _post(client, url, files, **fields):
    data = dict(fields)
    data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(url, data=data, content_type="multipart/form-data")


def _storage_errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "attachment storage refused" in r.getMessage()]


def _counts(db, user_id):
    return (db.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.requester_id == user_id)),
            db.session.scalar(select(func.count()).select_from(AuditLog)
                              .where(AuditLog.action == "ticket.portal_submitted", AuditLog.actor_id == user_id)))


@pytest.mark.parametrize("fault", ["unwritable_folder", "disk_full"])
def test_portal_new_ticket_keeps_the_form_and_writes_nothing(app, db, client, login, make_user, tmp_path, caplog,
                                                             fault):
    user = make_user()
    login(user)
    nonce = _nonce(client)
    typed = {"nonce": nonce, "subject": "接種記録が保存できません", "description": "入力して保存を押すとエラーになります。\n手順は以下の通りです。"}
    caplog.set_level(logging.ERROR)
    faulty = unwritable_folder(app, tmp_path) if fault == "unwritable_folder" else disk_full_after(app, tmp_path)
    with faulty as folder:
        response = _post(client, "/portal/new", [SMALL, LARGE], **typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "添付ファイルを保存できなかったため" in html
    assert typed["subject"] in html and "手順は以下の通りです。" in html  # the typed text is kept
    assert _counts(db, user.id) == (0, 0)  # no ticket, no half of one
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    if folder is not None:
        assert _files_under(folder) == []  # the small file written first is gone again, no .part left
    errors = _storage_errors(caplog)
    assert len(errors) == 1  # logged once, with its cause
    assert ("NotADirectoryError" if fault == "unwritable_folder" else "File too large") in errors[0].getMessage()
    # Storage back: the same form (same nonce) goes through. (A new request gets a new session in
    # the app; here the test's app context outlives requests, so end the session as teardown would.)
    db.session.remove()
    response = _post(client, "/portal/new", [SMALL, LARGE], **typed)
    assert response.status_code == 302
    assert _counts(db, user.id) == (1, 1)
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 2


def test_english_message(app, db, client, login, make_user, tmp_path):
    login(make_user())
    client.post("/lang", data={"lang": "en"})
    flask_babel.refresh()  # the test's app context outlives requests and keeps the first locale
    with unwritable_folder(app, tmp_path):
        response = _post(client, "/portal/new", [SMALL], nonce=_nonce(client), subject="Cannot save", description="x")
    assert response.status_code == 503
    assert "could not be saved" in response.get_data(as_text=True)


def test_portal_reply_keeps_the_text(app, db, client, login, make_ticket, tmp_path, caplog):
    ticket = make_ticket()
    login(ticket.requester)
    caplog.set_level(logging.ERROR)
    before = db.session.scalar(select(func.count()).select_from(Comment).where(Comment.ticket_id == ticket.id))
    with disk_full_after(app, tmp_path) as folder:
        response = _post(client, f"/portal/tickets/{ticket.ref}/reply", [SMALL, LARGE], body="追加の画面を送ります。")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "添付ファイルを保存できなかったため" in html and "追加の画面を送ります。" in html
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Comment).where(Comment.ticket_id == ticket.id)) == before
    assert db.session.scalar(select(func.count()).select_from(Attachment).where(Attachment.ticket_id == ticket.id)) == 0
    assert _files_under(folder) == []
    assert len(_storage_errors(caplog)) == 1


def test_agent_upload_keeps_the_note(app, db, client, login, make_ticket, agent, tmp_path, caplog):
    ticket = make_ticket()
    login(agent)
    caplog.set_level(logging.ERROR)
    with unwritable_folder(app, tmp_path):
        response = _post(client, f"/tickets/{ticket.ref}/attachments", [SMALL], visibility="public",
                         note="お客様から届いた画面です")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "添付ファイルを保存できなかったため" in html
    assert 'value="お客様から届いた画面です"' in html
    assert re.search(r'value="public" checked', html)
    assert db.session.scalar(select(func.count()).select_from(Comment).where(Comment.ticket_id == ticket.id)) == 0
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert len(_storage_errors(caplog)) == 1


def test_message_is_the_one_documented():
    assert "入力した内容は残っています" in STORAGE_FAILED
