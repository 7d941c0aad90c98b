"""Mailbox polling over IMAP against a real Dovecot started by the tests (issue 17.5).

Dovecot runs as a foreground child with a generated configuration in a temporary folder: passwd-file
users (one new user, i.e. one empty mailbox, per test), Maildir, 127.0.0.1 only on free ports, plain
IMAP (allowed for loopback) and IMAPS with a self-signed certificate made here. Messages go in by
IMAP APPEND, exactly as a mail server's delivery would leave them.
"""
from __future__ import annotations

import imaplib
import logging
import os
import ssl
import threading
import time
import uuid
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr

import pytest
from sqlalchemy import event, func, select

from helpdesk.accounts.models import AuditLog, User
from helpdesk.notify import imap
from helpdesk.notify.mailin import ingest_raw_mail
from helpdesk.notify.models import Outbox
from helpdesk.tickets.models import Comment, Ticket

from .dovecot_server import PASSWORD, Dovecot, dovecot_binary



@pytest.fixture(scope="module")
def dovecot():
    binary = dovecot_binary()
    if binary is None:
        message = "dovecot is not installed (apt-get install -y dovecot-imapd)"
        if os.environ.get("HELPDESK_FORBID_SKIPS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = Dovecot(binary)
    yield server
    server.stop()


class Mailbox:
    """The test's own view of the user's mailbox, over a separate IMAP connection."""

    def __init__(self, server: Dovecot, user: str):
        self.server, self.user = server, user

    def _conn(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.server.plain_port, timeout=10)
        conn.login(self.user, PASSWORD)
        return conn

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        conn = self._conn()
        try:
            typ, data = conn.append(imap.encode_mailbox(folder), None, None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def flag(self, uid: int, flags: str) -> None:
        conn = self._conn()
        try:
            conn.select("INBOX")
            typ, data = conn.uid("STORE", str(uid), "+FLAGS", flags)
            assert typ == "OK", data
        finally:
            conn.logout()

    def messages(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """uid → flags of every message in `folder` (empty when the folder does not exist)."""
        conn = self._conn()
        try:
            typ, _data = conn.select(imap.encode_mailbox(folder), readonly=True)
            if typ != "OK":
                return {}
            typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
            found = {}
            for line in data:
                if isinstance(line, bytes):
                    uid, _size, flags = imap._meta(line)
                    if uid is not None:
                        found[uid] = flags
            return found
        finally:
            conn.logout()


@pytest.fixture
def mailbox(app, dovecot):
    """A fresh mailbox and the app's IMAP_* settings pointing at it (plain IMAP on loopback)."""
    user = dovecot.add_user()
    keys = {"IMAP_HOST": "127.0.0.1", "IMAP_PORT": dovecot.plain_port, "IMAP_USER": user,
            "IMAP_PASSWORD": PASSWORD, "IMAP_SSL": "off", "IMAP_FOLDER": "INBOX", "IMAP_CA_FILE": None,
            "IMAP_PROCESSED_FOLDER": None, "IMAP_FAILED_FOLDER": None, "IMAP_MAX_ATTEMPTS": 3,
            "IMAP_INTERVAL": 60, "IMAP_IDLE": False, "IMAP_TIMEOUT": 10}
    saved = {k: app.config.get(k) for k in keys}
    app.config.update(keys)
    yield Mailbox(dovecot, user)
    app.config.update(saved)


def _settings(app, **overrides) -> imap.ImapSettings:
    config = dict(app.config)
    config.update(overrides)
    return imap.ImapSettings.from_config(config)


def _mail(subject, body, sender=("佐藤 一郎", "sato@clinic.example.jp"), charset="iso-2022-jp", msgid=True,
          **headers) -> bytes:
    msg = MIMEText(body, "plain", charset)
    msg["Subject"] = Header(subject, charset).encode()
    msg["From"] = formataddr((str(Header(sender[0], charset)), sender[1]))
    msg["To"] = "helpdesk@example.jp"
    if msgid:
        msg["Message-ID"] = f"<{uuid.uuid4().hex}@clinic.example.jp>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _sender() -> tuple[str, str]:
    return ("鈴木 花子", f"suzuki-{uuid.uuid4().hex[:8]}@clinic.example.jp")


def _poll(db, app, **overrides) -> imap.PollReport:
    poller = imap.MailboxPoller(_settings(app, **overrides))
    try:
        return poller.poll_once(db.session())
    finally:
        poller.close()


# --- the inbound path through a mailbox -----------------------------------------------------

def test_new_mail_over_imaps_becomes_a_ticket_then_is_marked_seen(db, app, mailbox, dovecot):
    sender = _sender()
    mailbox.append(_mail("配送予定が表示されません", "配送予定の画面が空白です。\nよろしくお願いします。", sender))
    before = _count(db, Ticket)
    # IMAPS with the test's self-signed certificate as the only trusted CA (verification stays on).
    report = _poll(db, app, IMAP_SSL="ssl", IMAP_PORT=dovecot.ssl_port, IMAP_CA_FILE=str(dovecot.cert))
    assert (report.created, report.failed, report.retry) == (1, 0, 0)
    assert _count(db, Ticket) == before + 1
    ticket = db.session.scalar(select(Ticket).where(Ticket.subject == "配送予定が表示されません"))
    assert ticket.body == "配送予定の画面が空白です。\nよろしくお願いします。" and ticket.channel == "email"
    assert ticket.requester.email == sender[1] and ticket.requester.name == sender[0]
    assert report.refs == [ticket.ref]
    (flags,) = mailbox.messages().values()
    assert "\\Seen" in flags and not any(f.startswith("$Helpdesk") for f in flags)
    # The next round finds nothing to do.
    assert _poll(db, app).as_dict() == imap.PollReport().as_dict()
    assert "TLS" in dovecot.log_text()


def test_imaps_refuses_a_certificate_it_cannot_verify(db, app, mailbox, dovecot):
    mailbox.append(_mail("証明書", "本文", _sender()))
    with pytest.raises(ssl.SSLCertVerificationError):
        _poll(db, app, IMAP_SSL="ssl", IMAP_PORT=dovecot.ssl_port, IMAP_CA_FILE=None)
    (flags,) = mailbox.messages().values()
    assert "\\Seen" not in flags


def test_starttls_upgrades_the_plain_port(db, app, mailbox, dovecot):
    mailbox.append(_mail("STARTTLS経由", "本文です", _sender()))
    report = _poll(db, app, IMAP_SSL="starttls", IMAP_CA_FILE=str(dovecot.cert))
    assert report.created == 1


def test_reply_threads_onto_the_existing_ticket(db, app, mailbox, make_ticket):
    ticket = make_ticket()
    requester = ticket.requester
    tickets_before = _count(db, Ticket)
    mailbox.append(_mail(f"Re: [{ticket.ref}] ログインできません", "再設定できました。\n\n"
                         "-----Original Message-----\n> 以前の回答", (requester.name, requester.email)))
    report = _poll(db, app)
    assert (report.appended, report.created) == (1, 0)
    assert _count(db, Ticket) == tickets_before
    comment = db.session.scalar(select(Comment).where(Comment.ticket_id == ticket.id))
    assert comment.body == "再設定できました。" and comment.via == "email"
    assert all("\\Seen" in f for f in mailbox.messages().values())


@pytest.mark.parametrize("headers,sender", [
    ({"Auto_Submitted": "auto-replied"}, ("不在", "absent@clinic.example.jp")),
    ({}, ("Mail Delivery System", "MAILER-DAEMON@mx.example.jp")),
])
def test_auto_replies_and_bounces_create_nothing_and_are_marked_seen(db, app, mailbox, make_ticket, headers,
                                                                      sender):
    ticket = make_ticket()
    counts = (_count(db, Ticket), _count(db, Outbox), _count(db, User), _count(db, Comment))
    mailbox.append(_mail(f"自動応答: [{ticket.ref}] 不在にしています", "10/5まで不在です。", sender, **headers))
    report = _poll(db, app)
    assert (report.ignored, report.created, report.failed) == (1, 0, 0)
    assert (_count(db, Ticket), _count(db, Outbox), _count(db, User), _count(db, Comment)) == counts
    (flags,) = mailbox.messages().values()
    assert "\\Seen" in flags and imap.FAILED_KEYWORD not in flags


# --- marked only after the commit -----------------------------------------------------------

def test_failure_before_commit_leaves_the_message_unseen_and_no_ticket(db, app, mailbox):
    mailbox.append(_mail("コミット前の障害", "本文", _sender()))
    before = _count(db, Ticket)
    session = db.session()

    def crash(_session):
        raise RuntimeError("simulated crash before commit")

    event.listen(session, "before_commit", crash)
    try:
        report = _poll(db, app)
    finally:
        event.remove(session, "before_commit", crash)
    assert (report.retry, report.created) == (1, 0)
    assert _count(db, Ticket) == before
    (flags,) = mailbox.messages().values()
    assert "\\Seen" not in flags and "$HelpdeskTry1" in flags and imap.FAILED_KEYWORD not in flags
    # The next round imports it; the attempt keyword goes.
    report = _poll(db, app)
    assert report.created == 1 and _count(db, Ticket) == before + 1
    (flags,) = mailbox.messages().values()
    assert "\\Seen" in flags and not any(f.startswith("$Helpdesk") for f in flags)


def test_crash_between_commit_and_mark_creates_no_duplicate(db, app, mailbox):
    # No Message-ID at all: the poller derives one from the bytes, so the dedupe still holds.
    mailbox.append(_mail("マークの前に落ちる", "本文です", _sender(), msgid=False))
    before = _count(db, Ticket)
    poller = imap.MailboxPoller(_settings(app))
    real_done = poller._done

    def connection_lost(conn, message, tries):
        conn.shutdown()  # the IMAP connection dies right after the commit, before \Seen is stored
        return real_done(conn, message, tries)

    poller._done = connection_lost
    with pytest.raises((imaplib.IMAP4.error, OSError, ValueError)):
        poller.poll_once(db.session())
    poller.close()
    assert _count(db, Ticket) == before + 1  # committed
    (flags,) = mailbox.messages().values()
    assert "\\Seen" not in flags
    report = _poll(db, app)
    assert (report.ignored, report.created) == (1, 0)
    assert _count(db, Ticket) == before + 1
    (flags,) = mailbox.messages().values()
    assert "\\Seen" in flags


def test_the_same_mail_delivered_again_is_stored_once(db, app, mailbox):
    raw = _mail("二重配送", "同じメールが2通届きました", _sender())
    mailbox.append(raw)
    mailbox.append(raw)
    before = _count(db, Ticket)
    report = _poll(db, app)
    assert (report.created, report.ignored) == (1, 1)
    assert _count(db, Ticket) == before + 1


# --- messages that cannot become tickets ----------------------------------------------------

def test_broken_message_is_set_aside_flagged_audited_and_not_retried(db, app, mailbox):
    mailbox.append(b"\x00\xff garbage without headers \x1b$B\r\n\r\n\xfe\xfe")
    before = _count(db, Ticket)
    report = _poll(db, app)
    assert (report.failed, report.created) == (1, 0)
    assert _count(db, Ticket) == before
    (flags,) = mailbox.messages().values()
    assert imap.FAILED_KEYWORD in flags and "\\Flagged" in flags
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "mail.import_failed"))
    assert row.detail["reason"] == "no_sender" and row.detail["folder"] == "INBOX"
    # Still in the mailbox, never tried again.
    assert _poll(db, app).as_dict() == imap.PollReport().as_dict()
    assert len(mailbox.messages()) == 1


def test_failed_folder_with_a_japanese_name_and_retry(db, app, mailbox, make_user):
    app.config["IMAP_FAILED_FOLDER"] = "取り込み失敗"
    sender = _sender()
    raw = _mail("大きすぎるメール", "あ" * 5000, sender, charset="utf-8")
    mailbox.append(raw)
    saved = app.config.get("MAIL_IN_MAX_BYTES")
    app.config["MAIL_IN_MAX_BYTES"] = 4000
    try:
        report = _poll(db, app)
    finally:
        app.config["MAIL_IN_MAX_BYTES"] = saved
    assert report.failed == 1
    assert mailbox.messages() == {}
    (flags,) = mailbox.messages("取り込み失敗").values()
    assert imap.FAILED_KEYWORD in flags
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "mail.import_failed"))
    assert row.detail["reason"] == "too_large"
    # The administrator raised the limit: `poll-imap --retry-failed` puts it back and it is imported.
    poller = imap.MailboxPoller(_settings(app))
    try:
        assert poller.retry_failed() == 1
    finally:
        poller.close()
    assert mailbox.messages("取り込み失敗") == {}
    (flags,) = mailbox.messages().values()
    assert not any(f.startswith("$Helpdesk") for f in flags) and "\\Flagged" not in flags
    assert _poll(db, app).created == 1


def test_a_message_that_keeps_failing_is_given_up_after_max_attempts(db, app, mailbox):
    mailbox.append(_mail("毎回失敗する", "本文", _sender()))
    session = db.session()

    def crash(_session):
        raise RuntimeError("simulated bug")

    event.listen(session, "before_commit", crash)
    try:
        reports = [_poll(db, app, IMAP_MAX_ATTEMPTS=2) for _ in range(2)]
    finally:
        event.remove(session, "before_commit", crash)
    assert [r.retry for r in reports] == [1, 1]
    (flags,) = mailbox.messages().values()
    assert {"$HelpdeskTry1", "$HelpdeskTry2"} <= flags and "\\Seen" not in flags
    report = _poll(db, app, IMAP_MAX_ATTEMPTS=2)
    assert (report.failed, report.created) == (1, 0)
    (flags,) = mailbox.messages().values()
    assert imap.FAILED_KEYWORD in flags
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "mail.import_failed"))
    assert row.detail["reason"] == "attempts:2" and row.detail["title"] == "毎回失敗する"


def test_processed_folder_receives_imported_mail(db, app, mailbox):
    mailbox.append(_mail("処理済みへ移動", "本文", _sender()))
    report = _poll(db, app, IMAP_PROCESSED_FOLDER="Helpdesk/処理済み")
    assert report.created == 1
    assert mailbox.messages() == {}
    (flags,) = mailbox.messages("Helpdesk.処理済み").values()
    assert "\\Seen" in flags


def test_sender_over_the_limit_stays_unseen_without_an_attempt(db, app, mailbox):
    sender = _sender()
    mailbox.append(_mail("一件目", "本文1", sender))
    mailbox.append(_mail("二件目", "本文2", sender))
    saved = app.config["RATELIMIT_ENABLED"], app.config.get("TICKET_CREATE_LIMIT_MAIL_SENDER")
    app.config["RATELIMIT_ENABLED"], app.config["TICKET_CREATE_LIMIT_MAIL_SENDER"] = True, "1 per hour"
    poller = imap.MailboxPoller(_settings(app))
    try:
        report = poller.poll_once(db.session())
        assert (report.created, report.deferred) == (1, 1)
        # Left alone until the sender's window ends, not retried every round.
        assert poller.poll_once(db.session()).as_dict() == imap.PollReport().as_dict()
    finally:
        poller.close()
        app.config["RATELIMIT_ENABLED"], app.config["TICKET_CREATE_LIMIT_MAIL_SENDER"] = saved
    first, second = (mailbox.messages()[uid] for uid in sorted(mailbox.messages()))
    assert "\\Seen" in first
    assert "\\Seen" not in second and not any(f.startswith("$Helpdesk") for f in second)


# --- settings, secrets, CLI, IDLE -----------------------------------------------------------

def test_settings_refuse_plain_text_to_a_remote_host_and_name_missing_values(app):
    base = {"IMAP_HOST": "mail.example.jp", "IMAP_USER": "desk", "IMAP_PASSWORD": "Pw-in-settings-5521"}
    with pytest.raises(imap.ImapConfigError, match="IMAP_SSL=off"):
        imap.ImapSettings.from_config({**base, "IMAP_SSL": "off"})
    with pytest.raises(imap.ImapConfigError, match="IMAP_PASSWORD"):
        imap.ImapSettings.from_config({**base, "IMAP_PASSWORD": None})
    with pytest.raises(imap.ImapConfigError, match="use ssl, starttls or off"):
        imap.ImapSettings.from_config({**base, "IMAP_SSL": "maybe"})
    settings = imap.ImapSettings.from_config(base)
    assert (settings.security, settings.port, settings.folder) == ("ssl", 993, "INBOX")
    assert imap.ImapSettings.from_config({**base, "IMAP_SSL": "starttls"}).port == 143
    assert "Pw-in-settings-5521" not in repr(settings) and "Pw-in-settings-5521" not in settings.where


def test_password_file_and_wrong_password_never_logged(db, app, mailbox, tmp_path, caplog):
    secret = tmp_path / "imap-password"
    secret.write_text("Wrong-Pass-77631\n")
    settings = _settings(app, IMAP_PASSWORD=None, IMAP_PASSWORD_FILE=str(secret))
    assert settings.password == "Wrong-Pass-77631"
    assert "Wrong-Pass-77631" not in repr(settings)
    caplog.set_level(logging.DEBUG)
    assert imap.run(app, settings, once=True) == 1
    assert "AUTHENTICATIONFAILED" in caplog.text or "Authentication failed" in caplog.text
    assert "Wrong-Pass-77631" not in caplog.text


def test_cli_poll_once_and_check(db, app, mailbox):
    mailbox.append(_mail("CLIからの取り込み", "本文です", _sender()))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mail", "check-imap"])
    assert result.exit_code == 0, result.output
    assert '"waiting": 1' in result.output and '"failed": 0' in result.output
    result = runner.invoke(args=["mail", "poll-imap", "--once"])
    assert result.exit_code == 0, result.output
    assert '"created": 1' in result.output and PASSWORD not in result.output
    db.session.expire_all()
    assert db.session.scalar(select(Ticket).where(Ticket.subject == "CLIからの取り込み")) is not None
    app.config["IMAP_PASSWORD"] = "not-the-password"
    result = runner.invoke(args=["mail", "poll-imap", "--once"])
    assert result.exit_code == 1 and "not-the-password" not in result.output


def test_idle_wakes_the_poller_when_mail_arrives(db, app, mailbox):
    # Interval 10 minutes: only IDLE can bring the mail in within the wait below.
    settings = _settings(app, IMAP_IDLE=True, IMAP_INTERVAL=600)
    stop, rounds, created = threading.Event(), threading.Event(), threading.Event()

    def on_report(report):
        rounds.set()
        if report.created:
            created.set()

    worker = threading.Thread(target=imap.run, args=(app, settings), kwargs={"stop": stop, "on_report": on_report})
    worker.start()
    try:
        assert rounds.wait(20)  # the first round ran (empty); the poller is now idling
        mailbox.append(_mail("IDLEで即時取り込み", "本文", _sender()))
        assert created.wait(30)
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()
    db.session.expire_all()
    assert db.session.scalar(select(Ticket).where(Ticket.subject == "IDLEで即時取り込み")) is not None


def test_same_raw_mail_through_smtp_path_then_imap_is_one_ticket(db, app, mailbox):
    """Both channels share ingest_raw_mail: a mail already taken by the SMTP receiver is only marked."""
    raw = _mail("両方の経路", "本文", _sender())
    first = ingest_raw_mail(db.session, raw)
    assert first.action == "created"
    mailbox.append(raw)
    report = _poll(db, app)
    assert (report.ignored, report.created) == (1, 0)
    assert _count(db, Ticket, Ticket.subject == "両方の経路") == 1


def test_failed_import_reads_in_words_in_japanese_and_english(app):
    from flask_babel import force_locale

    from helpdesk.accounts import audit_words

    detail = {"folder": "INBOX", "uid": 7, "reason": "no_sender", "sender": "a@example.jp"}
    with app.test_request_context():
        with force_locale("ja"):
            assert audit_words.action_label("mail.import_failed") == "受信メールの取り込みに失敗"
            assert audit_words.object_label("mail") == "メール"
            assert any(line.startswith("差出人") for line in audit_words.detail_lines("mail.import_failed", detail))
        with force_locale("en"):
            assert audit_words.action_label("mail.import_failed") == "Incoming mail could not be imported"
            assert any(line.startswith("Sender") for line in audit_words.detail_lines("mail.import_failed", detail))


def test_postgresql_serialises_imports_of_one_message_id(db):
    from sqlalchemy import text

    raw = _mail("同時取り込み", "本文", _sender())
    session = db.session()
    postgres = session.get_bind().dialect.name == "postgresql"
    held = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()")
    before = session.scalar(held) if postgres else None
    taken = imap.lock_message(session, raw)
    if not postgres:
        assert taken is False  # SQLite: one writer at a time anyway
        return
    assert taken is True and session.scalar(held) == before + 1


def test_folder_names_in_modified_utf7_and_derived_message_ids():
    # RFC 3501 section 5.1.3's own example, quoted for the command line.
    assert imap.encode_mailbox("~peter/mail/台北/日本語") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'
    assert imap.encode_mailbox('A&B "x"') == '"A&-B \\"x\\""'
    bare = b"From: a@example.jp\r\nSubject: x\r\n\r\nbody\r\n"
    once, again = imap._with_message_id(bare), imap._with_message_id(bare)
    assert once == again and once.startswith(b"Message-ID: <imap-") and once.endswith(bare)
    assert imap._with_message_id(b"Message-ID: <a@b>\r\n" + bare) == b"Message-ID: <a@b>\r\n" + bare
    assert imap._with_message_id(bare + b"x") != once
    folded = b"Message-ID:\r\n <folded@example.jp>\r\n" + bare
    assert imap._with_message_id(folded) == folded


def test_deleted_and_already_read_mail_is_left_alone(db, app, mailbox):
    mailbox.append(_mail("削除済み", "本文", _sender()))
    mailbox.append(_mail("既読", "本文", _sender()))
    first, second = sorted(mailbox.messages())
    mailbox.flag(first, "(\\Deleted)")
    mailbox.flag(second, "(\\Seen)")
    before = _count(db, Ticket)
    assert _poll(db, app).as_dict() == imap.PollReport().as_dict()
    assert _count(db, Ticket) == before


def test_two_pollers_racing_on_postgresql_store_a_reply_once(app, mailbox, tmp_path):
    """Two pollers fetch the same unseen reply; the second waits on the first's commit, then finds it stored."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from helpdesk import create_app
    from helpdesk.accounts.models import Organisation
    from helpdesk.audit import Actor
    from helpdesk.extensions import db as _db
    from helpdesk.tickets import service as tickets
    from tests.conftest import TEST_DB, base_config

    if not TEST_DB.startswith("postgresql"):
        pytest.skip("PostgreSQL run only (HELPDESK_TEST_DATABASE_URL): committed data in two connections")
    base = make_url(TEST_DB)
    name = f"{base.database}_imap_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                          "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
    try:
        own = create_app(base_config(SQLALCHEMY_DATABASE_URI=base.set(database=name).render_as_string(False),
                                     UPLOAD_FOLDER=str(tmp_path), REDIS_URL=None, RQ_ASYNC=False))
        own.config["RQ_ASYNC"] = False
        with own.app_context():
            _db.create_all()
            from helpdesk.db_setup import install_extras

            install_extras(_db.engine)
            tickets.ensure_categories(_db.session)
            org = Organisation(code="RACE01", name="競合テスト診療所", kind="clinic", prefecture="東京都")
            _db.session.add(org)
            _db.session.flush()
            requester = User(email="race@clinic.example.jp", name="競合 太郎", roles="requester",
                             organisation_id=org.id)
            _db.session.add(requester)
            _db.session.commit()
            ticket = tickets.create_ticket(_db.session, actor=Actor(requester.id, requester.email), subject="在庫",
                                           body="在庫が合いません", channel="web", requester_id=requester.id,
                                           organisation_id=org.id)
            ref, ticket_id = ticket.ref, ticket.id
            _db.session.remove()
        mailbox.append(_mail(f"Re: [{ref}] 在庫", "数え直しました。", ("競合 太郎", "race@clinic.example.jp")))
        settings = _settings(app)
        first_in_commit, results = threading.Event(), {}

        def poll(label, hold):
            with own.app_context():
                session = _db.session()
                if hold:
                    def slow_commit(_session):
                        if not first_in_commit.is_set():
                            first_in_commit.set()  # the lock is held, the reply not yet committed
                            time.sleep(1.5)
                    event.listen(session, "before_commit", slow_commit)
                poller = imap.MailboxPoller(settings)
                try:
                    results[label] = poller.poll_once(session).as_dict()
                finally:
                    poller.close()
                    _db.session.remove()

        first = threading.Thread(target=poll, args=("first", True))
        first.start()
        assert first_in_commit.wait(20)
        second = threading.Thread(target=poll, args=("second", False))
        second.start()  # sees the message still unseen, fetches it, waits on the lock
        first.join(30)
        second.join(30)
        assert (results["first"]["appended"], results["second"]["appended"]) == (1, 0)
        assert results["second"]["ignored"] == 1  # found the first poller's reply after its commit
        with own.app_context():
            assert _db.session.scalar(select(func.count()).select_from(Comment)
                                      .where(Comment.ticket_id == ticket_id)) == 1
            _db.session.remove()
            _db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
