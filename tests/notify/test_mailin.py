"""Inbound mail becomes tickets and replies; auto replies create and send nothing."""
from __future__ import annotations

import smtplib
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr

import pytest
from sqlalchemy import func, select

from helpdesk.accounts.models import User
from helpdesk.notify import service as notify
from helpdesk.notify.mailin import ingest_raw_mail, make_controller
from helpdesk.notify.models import Outbox
from helpdesk.tickets.models import Attachment, Comment, Ticket

from .conftest import free_port


def _mail(subject, body, charset, sender=("佐藤 一郎", "sato@clinic.example.jp"), msgid=None, **headers):
    msg = MIMEText(body, "plain", charset)
    msg["Subject"] = Header(subject, charset).encode()
    msg["From"] = formataddr((str(Header(sender[0], charset)), sender[1]))
    msg["To"] = "helpdesk@example.jp"
    msg["Message-ID"] = msgid or f"<{abs(hash((subject, body, sender)))}@mail.example.jp>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_iso_2022_jp_mail_from_unknown_sender_becomes_a_ticket(db):
    raw = _mail("ワクチンの配送予定が表示されません", "配送予定画面が空白です。\nよろしくお願いします。",
                "iso-2022-jp").as_bytes()
    result = ingest_raw_mail(db.session, raw)
    assert result.action == "created"
    ticket = db.session.get(Ticket, result.ticket_id)
    assert ticket.subject == "ワクチンの配送予定が表示されません"
    assert ticket.body == "配送予定画面が空白です。\nよろしくお願いします。"
    assert ticket.channel == "email"
    requester = ticket.requester
    assert requester.email == "sato@clinic.example.jp" and requester.name == "佐藤 一郎"
    assert requester.needs_review is True
    received = db.session.scalars(select(Outbox).where(Outbox.ticket_id == ticket.id,
                                                       Outbox.purpose == "ticket.ticket_received")).all()
    assert [r.recipient for r in received] == ["sato@clinic.example.jp"]


def test_shift_jis_mail_from_known_user_with_attachment(db, make_user, make_org):
    org = make_org(kind="wholesaler")
    user = make_user(org=org, email="tanaka@oroshi.example.jp")
    outer = MIMEMultipart()
    outer["Subject"] = Header("納品先住所の変更について", "shift_jis").encode()
    outer["From"] = "田中 <Tanaka@Oroshi.Example.JP>"
    outer["Message-ID"] = "<sjis-1@oroshi.example.jp>"
    outer.attach(MIMEText("納品先の住所が変わりました。添付をご確認ください。", "plain", "shift_jis"))
    pdf = MIMEApplication(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n", "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename=("utf-8", "", "住所変更届.pdf"))
    outer.attach(pdf)
    exe = MIMEApplication(b"MZ\x90\x00\x03binary", "octet-stream")
    exe.add_header("Content-Disposition", "attachment", filename="tool.exe")
    outer.attach(exe)
    result = ingest_raw_mail(db.session, outer.as_bytes())
    assert result.action == "created"
    ticket = db.session.get(Ticket, result.ticket_id)
    assert ticket.requester_id == user.id and ticket.organisation_id == org.id and ticket.role == "wholesaler"
    assert ticket.subject == "納品先住所の変更について"
    files = db.session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    assert [f.filename for f in files] == ["住所変更届.pdf"]
    assert len(result.refused_files) == 1 and "tool.exe" in result.refused_files[0]
    assert "添付できなかったファイル" in ticket.body


def test_reply_with_reference_threads_onto_the_ticket(db, make_ticket):
    ticket = make_ticket()
    requester = ticket.requester
    before = _count(db, Ticket)
    raw = _mail(f"Re: [{ticket.ref}] ログインできません", "ありがとうございます。解決しました。\n\n"
                "-----Original Message-----\n> 以前の回答", "iso-2022-jp",
                sender=(requester.name, requester.email)).as_bytes()
    result = ingest_raw_mail(db.session, raw)
    assert result.action == "appended" and result.ticket_id == ticket.id
    assert _count(db, Ticket) == before
    comment = db.session.get(Comment, result.comment_id)
    assert comment.body == "ありがとうございます。解決しました。" and comment.via == "email"
    # The same mail delivered twice (SMTP retry) is stored once.
    again = ingest_raw_mail(db.session, raw)
    assert again.action == "ignored" and again.reason == "duplicate"


def test_reply_threads_by_in_reply_to_of_our_mail(db, make_ticket):
    ticket = make_ticket()
    requester = ticket.requester
    ours = db.session.scalar(select(Outbox).where(Outbox.ticket_id == ticket.id))
    raw = _mail("Re: お問い合わせを受け付けました", "追加の情報です。", "utf-8",
                sender=(requester.name, requester.email),
                In_Reply_To=ours.headers["Message-ID"]).as_bytes()
    result = ingest_raw_mail(db.session, raw)
    assert result.action == "appended" and result.ticket_id == ticket.id


def test_stranger_cannot_reply_onto_someone_elses_ticket(db, make_ticket):
    ticket = make_ticket()
    raw = _mail(f"Re: [{ticket.ref}] 件名", "横から失礼します", "utf-8",
                sender=("部外者", "stranger@elsewhere.example.jp")).as_bytes()
    result = ingest_raw_mail(db.session, raw)
    assert result.action == "created" and result.ticket_id != ticket.id
    assert db.session.scalar(select(func.count()).select_from(Comment).where(Comment.ticket_id == ticket.id)) == 0


@pytest.mark.parametrize("headers,sender", [
    ({"Auto_Submitted": "auto-replied"}, ("不在", "sato@clinic.example.jp")),
    ({"Precedence": "bulk"}, ("一斉", "news@clinic.example.jp")),
    ({}, ("Mail Delivery System", "MAILER-DAEMON@mx.example.jp")),
])
def test_auto_replies_and_bounces_create_and_send_nothing(db, make_ticket, headers, sender):
    ticket = make_ticket()
    tickets_before, outbox_before, users_before = _count(db, Ticket), _count(db, Outbox), _count(db, User)
    raw = _mail(f"自動応答: [{ticket.ref}] 不在にしています", "10/5まで不在です。", "iso-2022-jp",
                sender=sender, **headers).as_bytes()
    result = ingest_raw_mail(db.session, raw)
    assert result.action == "ignored" and result.reason.startswith("auto:")
    assert (_count(db, Ticket), _count(db, Outbox), _count(db, User)) == (tickets_before, outbox_before, users_before)
    assert db.session.scalar(select(func.count()).select_from(Comment).where(Comment.ticket_id == ticket.id)) == 0


def test_smtp_receiver_end_to_end_and_size_limit(db, app):
    port = free_port()
    saved = app.config.get("MAIL_IN_MAX_BYTES")
    app.config["MAIL_IN_MAX_BYTES"] = 20_000
    controller = make_controller(app, "127.0.0.1", port)
    controller.start()
    try:
        msg = _mail("接種記録の入力方法", "接種記録の入力画面が分かりません。", "shift_jis",
                    sender=("鈴木", "suzuki@clinic.example.jp"), msgid="<smtp-1@clinic.example.jp>")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            refused = smtp.send_message(msg)
        assert refused == {}
        db.session.expire_all()
        ticket = db.session.scalar(select(Ticket).where(Ticket.subject == "接種記録の入力方法"))
        assert ticket is not None and ticket.body == "接種記録の入力画面が分かりません。"
        big = _mail("大きすぎる", "あ" * 30_000, "utf-8", msgid="<smtp-2@clinic.example.jp>")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as info:
                smtp.send_message(big)
        assert info.value.smtp_code == 552
        db.session.expire_all()
        assert db.session.scalar(select(Ticket).where(Ticket.subject == "大きすぎる")) is None
    finally:
        controller.stop()
        app.config["MAIL_IN_MAX_BYTES"] = saved


def test_own_message_ids_map_back_to_tickets(app):
    with app.app_context():
        mid = notify.new_message_id(123)
        assert notify.ticket_id_from_message_ids([mid]) == 123
        assert notify.ticket_id_from_message_ids(["<hd-000123.x@evil.example>"]) is None
