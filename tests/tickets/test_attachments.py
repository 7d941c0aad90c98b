"""Attachments: type by content, size limit, storage, scoped download with safe headers."""
import hashlib
import io
import os
import zipfile
from urllib.parse import quote

import pytest
from sqlalchemy import select

from helpdesk.audit import Actor
from helpdesk.tickets import attachments as att
from helpdesk.tickets import service
from helpdesk.tickets.models import Attachment, Comment

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64 + b"This program cannot be run in DOS mode"


def office(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


XLSX = office({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
DOCX = office({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<document/>"})
XLSM = office({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>", "xl/vbaProject.bin": b"x"})
PLAIN_ZIP = office({"readme.txt": b"hello"})


@pytest.mark.parametrize("name,data,kind,ctype", [
    ("報告書.pdf", PDF, "pdf", "application/pdf"),
    ("screen.png", PNG, "png", "image/png"),
    ("photo.JPG", JPEG, "jpeg", "image/jpeg"),
    ("anim.gif", GIF, "gif", "image/gif"),
    ("memo.txt", "接種記録の件です。\nよろしくお願いします。".encode("utf-8"), "text", "text/plain; charset=utf-8"),
    ("一覧.csv", "医療機関番号,数量\n1310160001,12\n".encode("cp932"), "csv", "text/csv; charset=shift_jis"),
    ("在庫.xlsx", XLSX, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("手順.docx", DOCX, "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
])
def test_allowed_types_are_recognised_by_content(name, data, kind, ctype):
    checked = att.check_file(name, data, limit=1024 * 1024)
    assert checked.kind == kind
    assert checked.content_type == ctype
    assert checked.filename == name


@pytest.mark.parametrize("name,data", [
    ("invoice.pdf", EXE),            # an .exe renamed to .pdf
    ("setup.exe", EXE),
    ("archive.zip", PLAIN_ZIP),      # a zip that is not an Office document
    ("report.xlsx", PLAIN_ZIP),
    ("binary.txt", b"abc\x00def"),
    ("bad.txt", b"\xff\xfe\xfa\x80\x81"),  # neither UTF-8 nor cp932
])
def test_disallowed_content_is_refused_whatever_the_name(name, data):
    with pytest.raises(att.AttachmentError) as exc:
        att.check_file(name, data, limit=1024 * 1024)
    assert name in str(exc.value)  # the message names the file


def test_macro_workbook_refused_with_a_clear_reason():
    with pytest.raises(att.AttachmentError, match="マクロ"):
        att.check_file("集計.xlsm", XLSM, limit=1024 * 1024)


def test_name_is_made_to_match_the_content():
    # A script saved as text stays harmless: its name gets the text extension.
    assert att.check_file("run.bat", b"echo hello\r\n", limit=1024).filename == "run.bat.txt"
    assert att.check_file("photo.pdf", PNG, limit=1024).filename == "photo.pdf.png"
    assert att.check_file("noext", PDF, limit=1024).filename == "noext.pdf"


def test_size_limit_and_empty_file():
    with pytest.raises(att.AttachmentError, match="大きすぎます"):
        att.check_file("big.pdf", PDF + b"0" * 2000, limit=1000)
    with pytest.raises(att.AttachmentError, match="空のファイル"):
        att.check_file("empty.txt", b"", limit=1000)
    assert att.check_file("ok.pdf", PDF, limit=len(PDF)).kind == "pdf"


def test_sanitize_filename():
    assert att.sanitize_filename("C:\\Users\\taro\\Desktop\\報告.pdf") == "報告.pdf"
    assert att.sanitize_filename("../../etc/passwd") == "passwd"
    assert att.sanitize_filename('a"b<c>\r\n.pdf') == "a_b_c_.pdf"
    assert att.sanitize_filename("evil\u202etxt.exe") == "eviltxt.exe"  # no right-to-left override
    assert att.sanitize_filename("...") == "file"


def test_content_disposition_ascii_fallback_and_rfc5987():
    header = att.content_disposition("接種記録 一覧.csv")
    assert header.startswith('attachment; filename="')
    assert "filename*=UTF-8''" + quote("接種記録 一覧.csv", safe="") in header
    assert '"' not in header.split('filename="')[1].split('"')[0]
    assert att.content_disposition("report.pdf") == 'attachment; filename="report.pdf"'


def test_save_bytes_stores_outside_static_with_random_name(app, db, make_ticket):
    ticket = make_ticket()
    row = att.save_bytes(db.session, ticket, "報告書.pdf", PDF, Actor.system("mail"), commit=True)
    path = att.stored_path(row.stored_name)
    assert os.path.exists(path)
    assert not os.path.abspath(path).startswith(os.path.abspath(app.static_folder))
    assert "報告書" not in path and row.stored_name not in ("報告書.pdf",)
    assert row.sha256 == hashlib.sha256(PDF).hexdigest() and row.size == len(PDF)
    with open(path, "rb") as fh:
        assert fh.read() == PDF


def test_size_limit_is_configurable(app, db, make_ticket):
    ticket = make_ticket()
    old = app.config["ATTACHMENT_MAX_BYTES"]
    app.config["ATTACHMENT_MAX_BYTES"] = 100
    try:
        with pytest.raises(att.AttachmentError, match="100 B"):
            att.save_bytes(db.session, ticket, "big.txt", b"a" * 101, Actor.system())
        assert att.save_bytes(db.session, ticket, "ok.txt", b"a" * 100, Actor.system()).size == 100
    finally:
        app.config["ATTACHMENT_MAX_BYTES"] = old
    assert old == 10 * 1024 * 1024


def _upload(client, url, files, **fields):
    data = dict(fields)
    data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(url, data=data, content_type="multipart/form-data")


def test_download_headers_and_scoping(db, client, login, make_org, make_user, make_ticket):
    org = make_org(kind="clinic")
    requester = make_user(org=org)
    ticket = make_ticket(requester=requester)
    row = att.save_bytes(db.session, ticket, "接種記録.pdf", PDF, Actor(requester.id, requester.email), commit=True)
    other = make_user(org=make_org(kind="clinic"))

    login(requester)
    response = client.get(f"/attachments/{row.id}")
    assert response.status_code == 200
    assert response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote("接種記録.pdf", safe="") in disposition
    client.post("/logout")

    login(other)
    assert client.get(f"/attachments/{row.id}").status_code == 404
    assert client.get("/attachments/999999").status_code == 404


def test_internal_note_files_are_staff_only(db, client, login, make_user, make_ticket, agent):
    ticket = make_ticket()
    requester = ticket.requester
    comment = service.add_comment(db.session, ticket.id, "社内確認用のログ", Actor.for_user(agent), public=False)
    row = att.save_bytes(db.session, ticket, "server.log", b"ERROR 500 at /allocation\n", Actor.for_user(agent),
                         comment_id=comment.id, commit=True)
    assert att.visible_attachments(db.session, requester, ticket) == []
    assert [a.id for a in att.visible_attachments(db.session, agent, ticket)] == [row.id]

    login(requester)
    assert client.get(f"/attachments/{row.id}").status_code == 404
    client.post("/logout")
    login(agent)
    assert client.get(f"/attachments/{row.id}").status_code == 200


def test_agent_upload_as_internal_note(db, client, login, make_ticket, agent):
    ticket = make_ticket()
    login(agent)
    response = _upload(client, f"/tickets/{ticket.ref}/attachments", [("画面.png", PNG)], visibility="internal")
    assert response.status_code == 302
    row = db.session.scalar(select(Attachment).where(Attachment.ticket_id == ticket.id))
    assert row is not None and row.filename == "画面.png"
    comment = db.session.get(Comment, row.comment_id)
    assert comment.is_public is False and "画面.png" in comment.body


def test_agent_upload_refuses_fake_pdf(db, client, login, make_ticket, agent):
    ticket = make_ticket()
    login(agent)
    response = _upload(client, f"/tickets/{ticket.ref}/attachments", [("invoice.pdf", EXE)], visibility="public")
    assert response.status_code == 302
    assert db.session.scalar(select(Attachment).where(Attachment.ticket_id == ticket.id)) is None
    with client.session_transaction() as sess:
        messages = [m for _c, m in sess.get("_flashes", [])]
    assert any("invoice.pdf" in m and "送れない種類" in m for m in messages)
