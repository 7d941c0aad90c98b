"""IMAP polling speed: N new mails then M replies in a real Dovecot mailbox, imported by MailboxPoller.

    .venv/bin/python bench/imap_poll.py --mails 500 --replies 200            # throwaway SQLite file
    createdb -h 127.0.0.1 -U postgres --template template0 --locale C.UTF-8 hd_imap_bench
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/hd_imap_bench \
        REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/imap_poll.py --mails 500 --replies 200
                                        # DROPS every table there; jobs only queued (use a scratch Redis db)

Dovecot (apt-get install dovecot-imapd) is started on loopback as in tests/notify/test_imap_poll.py;
the mails go in by IMAP APPEND (ISO-2022-JP, 40 senders), then the poller runs rounds of --batch until the
mailbox has nothing unseen: each message is fetched, imported through mailin.ingest_raw_mail (its own
commit) and marked \\Seen, over plain IMAP on loopback (the IMAPS handshake happens once per connection).
Figures: messages per second for new tickets and for replies threaded by [HD-…] in the subject.
"""
from __future__ import annotations

import argparse
import imaplib
import os
import shutil
import sys
import tempfile
import time
import uuid
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("HELPDESK_CLI", "1")

from tests.notify.dovecot_server import PASSWORD, Dovecot, dovecot_binary  # noqa: E402


def _mail(subject: str, body: str, sender: tuple[str, str]) -> bytes:
    msg = MIMEText(body, "plain", "iso-2022-jp")
    msg["Subject"] = Header(subject, "iso-2022-jp").encode()
    msg["From"] = formataddr((str(Header(sender[0], "iso-2022-jp")), sender[1]))
    msg["To"] = "helpdesk@example.jp"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@clinic.example.jp>"
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _append(server: Dovecot, user: str, mails: list[bytes]) -> float:
    conn = imaplib.IMAP4("127.0.0.1", server.plain_port)
    conn.login(user, PASSWORD)
    started = time.perf_counter()
    for raw in mails:
        typ, data = conn.append("INBOX", None, None, raw)
        assert typ == "OK", data
    elapsed = time.perf_counter() - started
    conn.logout()
    return elapsed


def _drain(app, settings) -> tuple[float, dict]:
    from helpdesk.extensions import db
    from helpdesk.notify.imap import MailboxPoller

    totals: dict[str, int] = {}
    poller = MailboxPoller(settings)
    started = time.perf_counter()
    with app.app_context():
        while True:
            report = poller.poll_once(db.session())
            for key, value in report.as_dict().items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
            if not any(v for v in report.as_dict().values() if isinstance(v, int)):
                break
        db.session.remove()
    poller.close()
    return time.perf_counter() - started, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    binary = dovecot_binary()
    if binary is None:
        sys.exit("dovecot is not installed: apt-get install -y dovecot-imapd")
    workdir = tempfile.mkdtemp(prefix="hd-imap-bench-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir}/bench.db"

    from sqlalchemy import select

    from helpdesk import create_app
    from helpdesk.extensions import db
    from helpdesk.notify.imap import ImapSettings
    from helpdesk.tickets.models import Ticket
    from helpdesk.tickets.service import ensure_categories

    import logging

    server = Dovecot(binary, users=1)
    user = server.add_user()
    try:
        redis_url = os.environ.get("REDIS_URL") or None  # jobs (ack mail, insights) queued, not run inline
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RQ_ASYNC": redis_url is not None, "REDIS_URL": redis_url,
                          "RATELIMIT_ENABLED": False, "BASE_URL": "http://127.0.0.1:5810",
                          "UPLOAD_FOLDER": f"{workdir}/uploads"})
        logging.getLogger("helpdesk").setLevel(logging.WARNING)  # one INFO line per message otherwise
        with app.app_context():
            db.drop_all()
            db.create_all()
            ensure_categories(db.session)
            db.session.commit()
        settings = ImapSettings.from_config({
            "IMAP_HOST": "127.0.0.1", "IMAP_PORT": server.plain_port, "IMAP_USER": user, "IMAP_PASSWORD": PASSWORD,
            "IMAP_SSL": "off", "IMAP_BATCH": args.batch})
        senders = [(f"利用者 {n}", f"user{n}@clinic{n % 7}.example.jp") for n in range(40)]
        new = [_mail(f"配送予定が表示されません（{n}）", "配送予定の画面が空白です。\nよろしくお願いします。\n" * 3,
                     senders[n % len(senders)]) for n in range(args.mails)]
        appended = _append(server, user, new)
        elapsed, totals = _drain(app, settings)
        print(f"database: {url.split('@')[-1]}, jobs: {'RQ (queued)' if redis_url else 'in-process (run inline)'}")
        print(f"APPEND {args.mails} mails: {appended:.2f} s ({args.mails / appended:.0f}/s)")
        print(f"new tickets: {totals} in {elapsed:.2f} s = {args.mails / elapsed:.1f} mails/s")
        with app.app_context():
            tickets = db.session.execute(select(Ticket.id, Ticket.subject, Ticket.requester_id)).all()
            from helpdesk.accounts.models import User

            emails = dict(db.session.execute(select(User.id, User.email)).all())
        by_email = {email: name for name, email in senders}
        replies = []
        for n in range(args.replies):
            ticket_id, subject, requester_id = tickets[n % len(tickets)]
            email = emails[requester_id]
            replies.append(_mail(f"Re: [HD-{ticket_id:06d}] {subject}", f"追加の情報です（{n}）。", (by_email[email], email)))
        _append(server, user, replies)
        elapsed, totals = _drain(app, settings)
        print(f"replies: {totals} in {elapsed:.2f} s = {args.replies / elapsed:.1f} mails/s")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
