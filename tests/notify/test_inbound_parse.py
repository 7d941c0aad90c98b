"""The inbound mail parser on real encoded messages built with the stdlib `email` package."""
from __future__ import annotations

from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr

import pytest

from helpdesk.notify.inbound import (MailTooLarge, decode_iso2022jp, html_to_text, parse_message,
                                     trim_quoted)

SUBJECT = "ログインできません（初期パスワード）"
BODY = "お世話になっております。\n初期パスワードでログインできません。\n対応をお願いします。"


def _headers(msg, charset, subject=SUBJECT, sender=("山田 太郎", "Taro.Yamada@City.Example.JP")):
    msg["Subject"] = Header(subject, charset).encode()
    msg["From"] = formataddr((str(Header(sender[0], charset)), sender[1]))
    msg["To"] = "helpdesk@example.jp"
    msg["Message-ID"] = "<abc.123@city.example.jp>"
    msg["Date"] = "Mon, 05 Oct 2026 10:15:00 +0900"
    return msg


def test_iso_2022_jp_plain_mail():
    msg = _headers(MIMEText(BODY, "plain", "iso-2022-jp"), "iso-2022-jp")
    raw = msg.as_bytes()
    assert b"\x1b$B" in raw  # really 7-bit JIS on the wire
    mail = parse_message(raw)
    assert mail.subject == SUBJECT
    assert mail.from_addr == "taro.yamada@city.example.jp"
    assert mail.from_name == "山田 太郎"
    assert mail.full_text == BODY
    assert mail.message_id == "<abc.123@city.example.jp>"
    assert mail.is_auto is False and mail.ticket_ref is None
    assert mail.date.utcoffset().total_seconds() == 9 * 3600


def test_iso_2022_jp_with_windows_extensions():
    # ① (NEC row 13) and ㈱ are outside strict ISO-2022-JP but common from Outlook on Windows.
    body = "①配送が遅れています　㈱テスト薬品"
    sjis = body.encode("cp932")
    # Build the JIS bytes by hand from cp932 (what Windows mailers send as "ISO-2022-JP").
    jis = bytearray(b"\x1b$B")
    i = 0
    while i < len(sjis):
        s1, s2 = sjis[i], sjis[i + 1]
        s1 -= 0xB0 if s1 >= 0xE0 else 0x70
        s1 <<= 1
        if s2 < 0x9F:
            s1 -= 1
            s2 -= 0x1F + (1 if s2 >= 0x80 else 0)
        else:
            s2 -= 0x7E
        jis += bytes((s1, s2))
        i += 2
    jis += b"\x1b(B"
    assert decode_iso2022jp(bytes(jis)) == body
    raw = (b"From: a@example.jp\r\nSubject: =?ISO-2022-JP?B?" +
           __import__("base64").b64encode(bytes(jis)) + b"?=\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
           bytes(jis) + b"\r\n")
    mail = parse_message(raw)
    assert mail.subject == body
    assert mail.full_text == body


def test_shift_jis_mail_with_attachments():
    outer = _headers(MIMEMultipart(), "shift_jis", subject="納品書の数量について")
    outer.attach(MIMEText(BODY, "plain", "shift_jis"))
    pdf = MIMEApplication(b"%PDF-1.4 test", "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename=("utf-8", "", "納品書.pdf"))  # RFC 2231
    outer.attach(pdf)
    csv = MIMEApplication("品名,数量\nA,10\n".encode("cp932"), "octet-stream")
    csv.add_header("Content-Disposition", "attachment", filename=Header("在庫一覧.csv", "shift_jis").encode())
    outer.attach(csv)
    mail = parse_message(outer.as_bytes())
    assert mail.subject == "納品書の数量について"
    assert mail.from_name == "山田 太郎"
    assert mail.full_text == BODY
    names = [a.filename for a in mail.attachments]
    assert names == ["納品書.pdf", "在庫一覧.csv"]
    assert mail.attachments[0].content == b"%PDF-1.4 test"
    assert mail.attachments[0].content_type == "application/pdf"
    assert mail.attachments[1].content.decode("cp932").startswith("品名")


def test_raw_shift_jis_headers_and_euc_jp_body():
    raw = ("From: 佐藤 <sato@clinic.example.jp>\r\nSubject: 接種記録の修正\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=EUC-JP\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           ).encode("cp932") + "接種記録を修正したいです。".encode("euc_jp")
    mail = parse_message(raw)
    assert mail.subject == "接種記録の修正"
    assert mail.from_name == "佐藤"
    assert mail.full_text == "接種記録を修正したいです。"


def test_utf8_html_only_body_is_converted_safely():
    html = ("<html><head><style>p{color:red}</style><script>alert('x')</script></head>"
            "<body><p>配送予定を<b>登録</b>できません。</p><div>エラー&nbsp;E-102 &lt;重要&gt;</div>"
            "<script>document.cookie</script></body></html>")
    msg = _headers(MIMEText(html, "html", "utf-8"), "utf-8", subject="配送予定の登録")
    mail = parse_message(msg.as_bytes())
    assert "alert" not in mail.full_text and "color" not in mail.full_text and "cookie" not in mail.full_text
    assert "配送予定を登録できません。" in mail.full_text
    assert "<重要>" in mail.full_text  # entities decoded to text (escaped again when shown)


def test_plain_preferred_over_html():
    alt = _headers(MIMEMultipart("alternative"), "utf-8")
    alt.attach(MIMEText("プレーン本文", "plain", "utf-8"))
    alt.attach(MIMEText("<p>HTML本文</p>", "html", "utf-8"))
    mail = parse_message(alt.as_bytes())
    assert mail.full_text == "プレーン本文"
    assert mail.attachments == []


def test_ticket_reference_and_threading_headers():
    msg = _headers(MIMEText("追記です", "plain", "utf-8"), "utf-8", subject="Re: [HD-000123] ログインできません")
    msg["In-Reply-To"] = "<hd-000123.5@helpdesk.example.jp>"
    msg["References"] = "<hd-000123.1@helpdesk.example.jp>\r\n <hd-000123.5@helpdesk.example.jp>"
    mail = parse_message(msg.as_bytes())
    assert mail.ticket_ref == "HD-000123"
    assert mail.in_reply_to == "<hd-000123.5@helpdesk.example.jp>"
    assert mail.references == ["<hd-000123.1@helpdesk.example.jp>", "<hd-000123.5@helpdesk.example.jp>"]
    assert mail.thread_ids[0] == "<hd-000123.5@helpdesk.example.jp>"
    wide = _headers(MIMEText("x", "plain", "utf-8"), "utf-8", subject="RE: ［ＨＤ－０００４５６］ 件名")
    assert parse_message(wide.as_bytes()).ticket_ref == "HD-000456"


@pytest.mark.parametrize("header,value", [
    ("Auto-Submitted", "auto-replied"),
    ("Precedence", "bulk"),
    ("Precedence", "junk"),
    ("Precedence", "list"),
    ("X-Autoreply", "yes"),
    ("X-Auto-Response-Suppress", "All"),
    ("Return-Path", "<>"),
])
def test_auto_replies_are_flagged(header, value):
    msg = _headers(MIMEText("不在です", "plain", "utf-8"), "utf-8", subject="自動応答: 不在")
    msg[header] = value
    mail = parse_message(msg.as_bytes())
    assert mail.is_auto is True and mail.auto_reason == header


def test_auto_submitted_no_is_a_person():
    msg = _headers(MIMEText("本人です", "plain", "utf-8"), "utf-8")
    msg["Auto-Submitted"] = "no"
    assert parse_message(msg.as_bytes()).is_auto is False


def test_bounces_are_flagged():
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.jp>"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("This is the mail system.", "plain", "us-ascii"))
    mail = parse_message(report.as_bytes())
    assert mail.is_auto and mail.auto_reason in ("From", "multipart/report")
    report2 = MIMEMultipart("report", report_type="delivery-status")
    report2["From"] = "someone@example.jp"
    report2.attach(MIMEText("x", "plain", "us-ascii"))
    assert parse_message(report2.as_bytes()).auto_reason == "multipart/report"
    postmaster = MIMEText("x", "plain", "us-ascii")
    postmaster["From"] = "postmaster@example.jp"
    assert parse_message(postmaster.as_bytes()).is_auto


def test_quoted_reply_is_trimmed():
    text = ("ご連絡ありがとうございます。\n解決しました。\n\n"
            "-----Original Message-----\nFrom: ヘルプデスク\n以前の本文")
    assert trim_quoted(text) == "ご連絡ありがとうございます。\n解決しました。"
    text2 = "了解しました。\n\nOn Mon, 5 Oct 2026 at 10:00, Helpdesk <hd@example.jp> wrote:\n> 前回の回答"
    assert trim_quoted(text2) == "了解しました。"
    text3 = "はい\n> 引用1\n＞ 全角の引用\nよろしくお願いします"
    assert trim_quoted(text3) == "はい\nよろしくお願いします"
    assert trim_quoted("> only a quote") == "> only a quote"  # nothing new: keep it all
    msg = _headers(MIMEText(text, "plain", "iso-2022-jp"), "iso-2022-jp")
    mail = parse_message(msg.as_bytes())
    assert mail.text == "ご連絡ありがとうございます。\n解決しました。"
    assert "以前の本文" in mail.full_text


def test_oversized_mail_refused():
    msg = _headers(MIMEText("x" * 5000, "plain", "utf-8"), "utf-8")
    with pytest.raises(MailTooLarge) as info:
        parse_message(msg.as_bytes(), max_bytes=1000)
    assert info.value.limit == 1000


def test_html_to_text_keeps_blocks():
    assert html_to_text("<p>一行目</p><p>二行目<br>三行目</p>") == "一行目\n\n二行目\n三行目"
