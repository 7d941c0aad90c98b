"""Mailbox polling over IMAP: the alternative to the SMTP receiver (`helpdesk mail poll-imap`).

Every unseen message of the folder goes through `mailin.ingest_raw_mail`, the same path as the SMTP
receiver: decoding, threading onto existing tickets, auto-reply/loop protection, the per-sender limit.
A message is marked \\Seen (or moved to IMAP_PROCESSED_FOLDER) only after its ticket or reply has been
committed. If the poller dies between that commit and the mark, the next round finds the Message-ID
already stored and only marks the message (a message without a Message-ID gets one derived from its
bytes, so the same holds for it).

A message that cannot become a ticket (no sender, too large, refused) is flagged `$HelpdeskFailed` +
\\Flagged (and moved to IMAP_FAILED_FOLDER when set), logged and audited: never lost, never retried.
A message whose import raises is retried on the next rounds; each attempt is written onto the message
(`$HelpdeskTry1`, `$HelpdeskTry2`, …) before it starts, so after IMAP_MAX_ATTEMPTS attempts, even
ones that killed the process, it is set aside as failed instead of being tried forever.
"""
from __future__ import annotations

import base64
import hashlib
import imaplib
import ipaddress
import logging
import re
import select
import ssl
import threading
import time
from dataclasses import dataclass, field

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.extensions import db
from helpdesk.notify.inbound import parse_message
from helpdesk.notify.mailin import ingest_raw_mail, max_mail_bytes

logger = logging.getLogger(__name__)

FAILED_KEYWORD = "$HelpdeskFailed"
TRY_KEYWORD = "$HelpdeskTry"
SECURITY_MODES = ("ssl", "starttls", "off")
_ALIASES = {"true": "ssl", "yes": "ssl", "on": "ssl", "1": "ssl", "tls": "ssl", "imaps": "ssl",
            "false": "off", "no": "off", "0": "off", "none": "off", "plain": "off"}
#: Outcomes that count as processed (besides "ignored" for any reason but a missing sender).
_ACTIONS_DONE = ("created", "appended")


class ImapConfigError(RuntimeError):
    """The IMAP settings are missing or unsafe; the message says which variable to fix."""


@dataclass(frozen=True)
class ImapSettings:
    host: str
    user: str
    password: str = field(repr=False)
    port: int = 993
    folder: str = "INBOX"
    #: ssl (IMAPS, the default) | starttls | off (plain text, loopback hosts only)
    security: str = "ssl"
    verify: bool = True
    ca_file: str | None = None
    processed_folder: str | None = None
    failed_folder: str | None = None
    max_attempts: int = 3
    interval: float = 60.0
    idle: bool = False
    timeout: float = 30.0
    batch: int = 50

    @classmethod
    def from_config(cls, config) -> "ImapSettings":
        """Read IMAP_* settings; ImapConfigError names the variable that is missing or wrong."""
        host = (config.get("IMAP_HOST") or "").strip()
        user = (config.get("IMAP_USER") or "").strip()
        password = config.get("IMAP_PASSWORD") or ""
        password_file = config.get("IMAP_PASSWORD_FILE")
        if not password and password_file:
            try:
                with open(password_file, encoding="utf-8") as fh:
                    password = fh.read().rstrip("\r\n")
            except OSError as exc:
                raise ImapConfigError(f"IMAP_PASSWORD_FILE cannot be read: {exc.strerror}") from None
        missing = [name for name, value in (("IMAP_HOST", host), ("IMAP_USER", user),
                                            ("IMAP_PASSWORD", password)) if not value]
        if missing:
            raise ImapConfigError("mailbox polling needs " + ", ".join(missing) + " (IMAP_PASSWORD or "
                                  "IMAP_PASSWORD_FILE)")
        raw_security = str(config.get("IMAP_SSL") or "ssl").strip().lower()
        security = _ALIASES.get(raw_security, raw_security)
        if security not in SECURITY_MODES:
            raise ImapConfigError(f"IMAP_SSL={raw_security!r}: use ssl, starttls or off")
        if security == "off" and not is_loopback(host):
            raise ImapConfigError(f"IMAP_SSL=off sends the password in clear text: only allowed for a loopback "
                                  f"host (127.0.0.1, ::1, localhost), not {host!r}; use ssl or starttls")
        port = int(config.get("IMAP_PORT") or (993 if security == "ssl" else 143))
        if not 0 < port < 65536:
            raise ImapConfigError(f"IMAP_PORT={port} is not a port")
        max_attempts = int(config.get("IMAP_MAX_ATTEMPTS") or 3)
        if max_attempts < 1:
            raise ImapConfigError("IMAP_MAX_ATTEMPTS must be 1 or more")
        interval = float(config.get("IMAP_INTERVAL") or 60)
        if interval <= 0:
            raise ImapConfigError("IMAP_INTERVAL must be more than 0 seconds")
        return cls(host=host, user=user, password=password, port=port,
                   folder=(config.get("IMAP_FOLDER") or "INBOX").strip(), security=security,
                   verify=bool(config.get("IMAP_SSL_VERIFY", True)), ca_file=config.get("IMAP_CA_FILE") or None,
                   processed_folder=(config.get("IMAP_PROCESSED_FOLDER") or "").strip() or None,
                   failed_folder=(config.get("IMAP_FAILED_FOLDER") or "").strip() or None,
                   max_attempts=max_attempts, interval=interval, idle=bool(config.get("IMAP_IDLE")),
                   timeout=float(config.get("IMAP_TIMEOUT") or 30), batch=max(1, int(config.get("IMAP_BATCH") or 50)))

    @property
    def where(self) -> str:
        """user@host:port/folder for logs (never the password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class PollReport:
    """What one polling round did, per outcome (printed by the CLI as JSON)."""

    created: int = 0
    appended: int = 0
    ignored: int = 0
    deferred: int = 0
    failed: int = 0
    #: messages whose import raised and that stay unseen for another attempt
    retry: int = 0
    refs: list[str] = field(default_factory=list)
    #: more unseen messages than one batch: the caller polls again at once
    more: bool = False

    def as_dict(self) -> dict:
        return {"created": self.created, "appended": self.appended, "ignored": self.ignored,
                "deferred": self.deferred, "failed": self.failed, "retry": self.retry, "tickets": self.refs}


# --- IMAP helpers ---------------------------------------------------------------------------

def encode_mailbox(name: str) -> str:
    """A folder name as IMAP wants it: modified UTF-7 (RFC 3501 5.1.3), quoted."""
    out, run = [], []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    encoded = "".join(out)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(typ: str, data, what: str):
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what}: {typ} {detail}".strip())
    return data


_FETCH_META = re.compile(rb"UID (\d+)|RFC822\.SIZE (\d+)|FLAGS \(([^)]*)\)")


def _meta(line: bytes) -> tuple[int | None, int | None, set[str]]:
    uid = size = None
    flags: set[str] = set()
    for m in _FETCH_META.finditer(line):
        if m.group(1):
            uid = int(m.group(1))
        elif m.group(2):
            size = int(m.group(2))
        else:
            flags = {f.decode("ascii", "replace") for f in m.group(3).split()}
    return uid, size, flags


#: a Message-ID header with an id in angle brackets, also when folded onto the next line
_MESSAGE_ID = re.compile(rb"(?im)^message-id[ \t]*:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)")


def _with_message_id(raw: bytes) -> bytes:
    """Give a message without Message-ID one derived from its bytes, so a re-run finds it stored."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    if _MESSAGE_ID.search(head):
        return raw
    digest = hashlib.sha256(raw).hexdigest()[:40]
    newline = b"\r\n" if b"\r\n" in head or not head else b"\n"
    return f"Message-ID: <imap-{digest}@helpdesk.invalid>".encode("ascii") + newline + raw


def _is_database_down(exc: BaseException) -> bool:
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError))


def lock_message(session, raw: bytes) -> bool:
    """PostgreSQL: serialise imports of one Message-ID for the rest of this transaction.

    Two pollers (or a restarted one racing the old) that fetched the same message take turns: the
    second one's duplicate check runs after the first one's commit and finds the stored ticket or reply
    (replies have no unique constraint on their Message-ID to catch it otherwise). False elsewhere.
    """
    from sqlalchemy import text

    if session.get_bind().dialect.name != "postgresql":
        return False
    found = _MESSAGE_ID.search(raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])
    digest = hashlib.sha256(b"helpdesk-mail:" + (found.group(1) if found else raw)).digest()
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)})
    return True


@dataclass
class _Message:
    uid: int
    size: int | None
    flags: set[str]

    @property
    def attempts(self) -> int:
        return sum(1 for f in self.flags if f.startswith(TRY_KEYWORD))


# --- the poller -----------------------------------------------------------------------------

class MailboxPoller:
    """One mailbox, one connection (opened on demand, dropped on any IMAP/network error)."""

    def __init__(self, settings: ImapSettings, *, max_bytes: int | None = None):
        self.settings = settings
        self.max_bytes = max_bytes
        self.conn: imaplib.IMAP4 | None = None
        self.capabilities: set[str] = set()
        self.keywords = False
        self.uidvalidity: int | None = None
        #: the server's hierarchy separator ("." for Dovecot's Maildir++, "/" for many others)
        self.delimiter: str | None = None
        #: (uidvalidity, uid) → monotonic time before which a message over the sender's limit is left alone
        self._deferred: dict[tuple[int | None, int], float] = {}
        #: attempts counted here when the server keeps no keywords (e.g. Exchange)
        self._attempts: dict[tuple[int | None, int], int] = {}

    # connection ---------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.settings.ca_file)
        if not self.settings.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def connect(self) -> imaplib.IMAP4:
        """Open, secure, log in and select the folder; IMAP4.error / OSError when that fails."""
        s = self.settings
        if s.security == "ssl":
            conn = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=self._ssl_context(), timeout=s.timeout)
        else:
            conn = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                conn.starttls(ssl_context=self._ssl_context())  # refused unless the server offers it
        try:
            # imaplib sends the password only inside LOGIN; nothing here logs the command line.
            conn.login(s.user, s.password)
            typ, data = conn.capability()
            self.capabilities = set(_check(typ, data, "CAPABILITY")[0].decode("ascii", "replace").upper().split())
            typ, data = conn.list('""', '""')
            found = re.match(rb'\([^)]*\) (?:"((?:[^"\\]|\\.)*)"|NIL)', data[0] or b"") if typ == "OK" else None
            self.delimiter = found.group(1).decode("ascii", "replace").replace("\\", "") if found and found.group(1) \
                else None
            self._select(conn)
            for folder in (s.processed_folder, s.failed_folder):
                if folder:
                    self._ensure_folder(conn, folder)
        except BaseException:
            self._close(conn)
            raise
        self.conn = conn
        logger.info("imap: connected to %s (%s)", s.where, s.security)
        return conn

    def _select(self, conn: imaplib.IMAP4) -> None:
        typ, data = conn.select(encode_mailbox(self._folder(self.settings.folder)))
        _check(typ, data, f"SELECT {self.settings.folder}")
        _typ, perm = conn.response("PERMANENTFLAGS")
        self.keywords = bool(perm and perm[0] and b"\\*" in perm[0])
        _typ, validity = conn.response("UIDVALIDITY")
        new_validity = int(validity[0]) if validity and validity[0] else None
        if self.uidvalidity is not None and new_validity != self.uidvalidity:
            logger.warning("imap: UIDVALIDITY of %s changed (%s → %s): the mailbox was rebuilt",
                           self.settings.where, self.uidvalidity, new_validity)
            self._deferred.clear()
            self._attempts.clear()
        self.uidvalidity = new_validity

    def _folder(self, name: str) -> str:
        """A configured folder name with '/' as the hierarchy separator, in the server's own separator."""
        if self.delimiter and self.delimiter != "/":
            return name.replace("/", self.delimiter)
        return name

    def _ensure_folder(self, conn: imaplib.IMAP4, folder: str) -> None:
        typ, data = conn.list('""', encode_mailbox(self._folder(folder)))
        if typ == "OK" and any(d for d in data if d):
            return
        typ, data = conn.create(encode_mailbox(self._folder(folder)))
        _check(typ, data, f"CREATE {folder}")
        logger.info("imap: created folder %s", folder)

    @staticmethod
    def _close(conn: imaplib.IMAP4) -> None:
        try:
            conn.logout()
        except Exception:  # already broken: the socket is closed either way
            try:
                conn.shutdown()
            except Exception:
                pass

    def close(self) -> None:
        if self.conn is not None:
            self._close(self.conn)
            self.conn = None

    # one round ----------------------------------------------------------------------------

    def poll_once(self, session) -> PollReport:
        """Import every unseen message (up to one batch); IMAP4.error/OSError leave the rest for later.

        Commits through the inbound path, one message at a time.
        """
        conn = self.conn or self.connect()
        try:
            return self._round(conn, session)
        except (imaplib.IMAP4.error, OSError):
            self.close()  # a broken connection: the next round opens a new one
            raise

    def _round(self, conn: imaplib.IMAP4, session) -> PollReport:
        report = PollReport()
        # UNDELETED: a message someone deleted (not yet expunged) is not mail to import.
        criteria = ["UNSEEN", "UNDELETED"] + (["UNKEYWORD", FAILED_KEYWORD] if self.keywords else [])
        typ, data = conn.uid("SEARCH", None, *criteria)
        uids = sorted(int(u) for u in b" ".join(d for d in _check(typ, data, "SEARCH") if d).split())
        now = time.monotonic()
        uids = [u for u in uids if self._deferred.get((self.uidvalidity, u), 0) <= now]
        if len(uids) > self.settings.batch:
            uids, report.more = uids[:self.settings.batch], True
        if not uids:
            return report
        for message in self._fetch_meta(conn, uids):
            self._process(conn, session, message, report)
        return report

    def _fetch_meta(self, conn: imaplib.IMAP4, uids: list[int]) -> list[_Message]:
        typ, data = conn.uid("FETCH", ",".join(map(str, uids)), "(UID RFC822.SIZE FLAGS)")
        found: dict[int, _Message] = {}
        for item in _check(typ, data, "FETCH"):
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid, size, flags = _meta(line)
            if uid in uids:
                found[uid] = _Message(uid, size, flags)
        return [found[u] for u in uids if u in found]  # one expunged meanwhile is simply gone

    def _fetch_raw(self, conn: imaplib.IMAP4, uid: int) -> bytes | None:
        typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")  # PEEK: fetching must not set \Seen
        for item in _check(typ, data, "FETCH"):
            if isinstance(item, tuple) and b"BODY[]" in item[0] and _meta(item[0])[0] in (uid, None):
                return item[1]
        return None

    def _store(self, conn: imaplib.IMAP4, uid: int, op: str, flags: list[str]) -> None:
        if flags:
            typ, data = conn.uid("STORE", str(uid), op, "(" + " ".join(flags) + ")")
            _check(typ, data, f"STORE {op}")

    def _move(self, conn: imaplib.IMAP4, uid: int, folder: str) -> None:
        target = encode_mailbox(self._folder(folder))
        if "MOVE" in self.capabilities:
            _check(*conn.uid("MOVE", str(uid), target), f"MOVE {folder}")
            return
        _check(*conn.uid("COPY", str(uid), target), f"COPY {folder}")
        self._store(conn, uid, "+FLAGS.SILENT", ["\\Deleted"])
        if "UIDPLUS" in self.capabilities:
            _check(*conn.uid("EXPUNGE", str(uid)), "UID EXPUNGE")
        # Without UIDPLUS a plain EXPUNGE could remove other clients' deleted messages: leave it flagged.

    def _process(self, conn: imaplib.IMAP4, session, message: _Message, report: PollReport) -> None:
        key = (self.uidvalidity, message.uid)
        limit = self.max_bytes or max_mail_bytes()
        attempts = message.attempts if self.keywords else self._attempts.get(key, 0)
        if message.size is not None and message.size > limit:
            self._fail(conn, session, message, None, "too_large", report)  # not even downloaded
            return
        raw = self._fetch_raw(conn, message.uid)
        if raw is None:
            return  # expunged meanwhile
        raw = _with_message_id(raw)
        if attempts >= self.settings.max_attempts:
            self._fail(conn, session, message, raw, f"attempts:{attempts}", report)
            return
        attempt_flag = f"{TRY_KEYWORD}{attempts + 1}"
        if self.keywords:  # written before the import starts: counts even if the process dies in it
            self._store(conn, message.uid, "+FLAGS.SILENT", [attempt_flag])
        else:
            self._attempts[key] = attempts + 1
        try:
            lock_message(session, raw)
            result = ingest_raw_mail(session, raw, max_bytes=limit)
        except Exception as exc:
            session.rollback()
            if _is_database_down(exc):
                # Not the message's fault: take the attempt back and stop the round (the caller backs off).
                self._forget_attempt(conn, message.uid, key, attempt_flag, attempts)
                raise
            report.retry += 1
            logger.exception("imap: uid %s of %s could not be imported (attempt %s of %s)", message.uid,
                             self.settings.where, attempts + 1, self.settings.max_attempts)
            return
        if result.action not in _ACTIONS_DONE:
            session.rollback()  # nothing of it is kept: end the transaction (and its lock) now, not at round end
        if result.action == "deferred":
            self._forget_attempt(conn, message.uid, key, attempt_flag, attempts)
            self._deferred[key] = time.monotonic() + (result.retry_after or self.settings.interval)
            report.deferred += 1
            logger.info("imap: uid %s left unseen: sender over the creation limit for %s s", message.uid,
                        result.retry_after)
            return
        if result.action in _ACTIONS_DONE or (result.action == "ignored" and result.reason != "no_sender"):
            self._done(conn, message, attempts + 1)
            self._attempts.pop(key, None)
            if result.action == "ignored":
                report.ignored += 1
            else:
                setattr(report, result.action, getattr(report, result.action) + 1)
                report.refs.append(result.ref)
            logger.info("imap: uid %s → %s", message.uid, result.as_dict())
            return
        self._fail(conn, session, message, raw, result.reason or result.action, report)

    def _forget_attempt(self, conn, uid: int, key, flag: str, attempts: int) -> None:
        if self.keywords:
            self._store(conn, uid, "-FLAGS.SILENT", [flag])
        else:
            self._attempts[key] = attempts

    def _done(self, conn: imaplib.IMAP4, message: _Message, tries: int) -> None:
        """Mark a committed message as processed: \\Seen, attempt keywords off, moved when configured."""
        self._store(conn, message.uid, "+FLAGS.SILENT", ["\\Seen"])
        if self.keywords:
            self._store(conn, message.uid, "-FLAGS.SILENT", [f"{TRY_KEYWORD}{n}" for n in range(1, tries + 1)])
        if self.settings.processed_folder:
            self._move(conn, message.uid, self.settings.processed_folder)

    def _fail(self, conn: imaplib.IMAP4, session, message: _Message, raw: bytes | None, reason: str,
              report: PollReport) -> None:
        """Set a message aside: audited, logged, flagged (and moved); it stays in the mailbox."""
        detail = {"folder": self.settings.folder, "uid": message.uid, "reason": reason}
        if raw is not None:
            try:
                mail = parse_message(raw, max_bytes=len(raw) + 1)
                detail.update({"message_id": mail.message_id, "sender": mail.from_addr, "title": mail.subject[:200]})
            except Exception:  # the audit row must not depend on the message being readable
                pass
        audit.record(session, Actor.system("mail-in"), "mail.import_failed", "mail",
                     f"imap:{self.uidvalidity}:{message.uid}", detail)
        session.commit()
        if self.keywords:
            self._store(conn, message.uid, "+FLAGS.SILENT", [FAILED_KEYWORD, "\\Flagged"])
        else:  # no keywords on this server: \Seen keeps it out of the next rounds
            self._store(conn, message.uid, "+FLAGS.SILENT", ["\\Flagged", "\\Seen"])
        if self.settings.failed_folder:
            self._move(conn, message.uid, self.settings.failed_folder)
        report.failed += 1
        logger.warning("imap: uid %s of %s set aside as failed (%s)%s", message.uid, self.settings.where, reason,
                       f", moved to {self.settings.failed_folder}" if self.settings.failed_folder else "")

    # set-aside messages -------------------------------------------------------------------

    def retry_failed(self) -> int:
        """Give messages set aside as failed another chance: keywords off, back into the polled folder."""
        conn = self.conn or self.connect()
        count = 0
        if self.settings.failed_folder:
            _check(*conn.select(encode_mailbox(self._folder(self.settings.failed_folder))), "SELECT failed folder")
            typ, data = conn.uid("SEARCH", None, "ALL")
            uids = b" ".join(d for d in _check(typ, data, "SEARCH") if d).split()
            for uid in uids:
                self._clear_failure(conn, int(uid))
                self._move(conn, int(uid), self.settings.folder)
            count = len(uids)
            self._select(conn)
        criteria = ["KEYWORD", FAILED_KEYWORD] if self.keywords else ["FLAGGED", "SEEN"]
        typ, data = conn.uid("SEARCH", None, *criteria)
        uids = b" ".join(d for d in _check(typ, data, "SEARCH") if d).split()
        for uid in uids:
            self._clear_failure(conn, int(uid))
            self._store(conn, int(uid), "-FLAGS.SILENT", ["\\Seen"])
        self._attempts.clear()
        return count + len(uids)

    def _clear_failure(self, conn: imaplib.IMAP4, uid: int) -> None:
        flags = ["\\Flagged"]
        if self.keywords:
            flags += [FAILED_KEYWORD] + [f"{TRY_KEYWORD}{n}" for n in range(1, self.settings.max_attempts + 10)]
        self._store(conn, uid, "-FLAGS.SILENT", flags)

    def status(self) -> dict:
        """Counts for a connection check: unseen (waiting), failed (set aside)."""
        conn = self.conn or self.connect()

        def count(*criteria) -> int:
            data = _check(*conn.uid("SEARCH", None, *criteria), "SEARCH")
            return len(b" ".join(d for d in data if d).split())

        waiting = count("UNSEEN", "UNKEYWORD", FAILED_KEYWORD) if self.keywords else count("UNSEEN")
        failed = count("KEYWORD", FAILED_KEYWORD) if self.keywords else count("FLAGGED", "SEEN")
        return {"mailbox": self.settings.where, "security": self.settings.security, "waiting": waiting,
                "failed": failed, "keywords": self.keywords, "move": "MOVE" in self.capabilities,
                "idle": "IDLE" in self.capabilities}

    # waiting ------------------------------------------------------------------------------

    def idle(self, seconds: float, stop: threading.Event) -> bool:
        """IMAP IDLE (RFC 2177) for up to `seconds`; True when the server announced new mail."""
        conn = self.conn
        if conn is None or "IDLE" not in self.capabilities:
            return False
        tag = conn._new_tag()
        conn.send(tag + b" IDLE\r\n")
        line = conn.readline()
        if not line.startswith(b"+"):
            raise imaplib.IMAP4.error(f"IDLE refused: {line[:200]!r}")
        woke, deadline = False, time.monotonic() + seconds
        while not woke and not stop.is_set() and time.monotonic() < deadline:
            # select() on the socket, never a read with a timeout: a timed-out read could cut a line.
            ready = conn.sock.pending() if isinstance(conn.sock, ssl.SSLSocket) else 0
            if not ready:
                readable, _w, _x = select.select([conn.sock], [], [], min(1.0, max(0.0, deadline - time.monotonic())))
                if not readable:
                    continue
            line = conn.readline()
            if not line:
                raise imaplib.IMAP4.abort("connection closed during IDLE")
            woke = line.startswith(b"*") and (b"EXISTS" in line or b"RECENT" in line)
        conn.send(b"DONE\r\n")
        while True:
            line = conn.readline()
            if not line:
                raise imaplib.IMAP4.abort("connection closed after IDLE")
            if line.startswith(tag):
                break
        return woke


def run(app, settings: ImapSettings, *, once: bool = False, stop: threading.Event | None = None,
        on_report=None) -> int:
    """Poll until `stop` is set (or one round with `once`); returns the number of failed rounds.

    Each round runs in its own app context and releases its database session afterwards; IMAP and
    database outages are logged and retried with backoff (doubling from the interval up to 10 min).
    """
    stop = stop or threading.Event()
    poller = MailboxPoller(settings)
    failed_rounds, backoff = 0, 0.0
    try:
        while not stop.is_set():
            more, ok = False, False
            with app.app_context():
                try:
                    report = poller.poll_once(db.session())
                    more, ok = report.more, True
                    if on_report is not None:
                        on_report(report)
                except (imaplib.IMAP4.error, OSError) as exc:
                    poller.close()
                    logger.error("imap: %s: %s", settings.where, exc)
                except Exception as exc:
                    db.session.rollback()
                    if not _is_database_down(exc):
                        raise
                    logger.error("imap: database unavailable, %s stays unread: %s", settings.where, exc)
                finally:
                    db.session.remove()
            if not ok:
                failed_rounds += 1
                backoff = min(max(backoff * 2, settings.interval), 600.0)
            else:
                backoff = 0.0
            if once:
                break
            if backoff:
                stop.wait(backoff)
            elif more:
                continue
            elif settings.idle and poller.conn is not None and "IDLE" in poller.capabilities:
                try:
                    # Servers end an IDLE after 30 min; re-issue well before (RFC 2177: every 29 min at most).
                    poller.idle(min(settings.interval, 25 * 60), stop)
                except (imaplib.IMAP4.error, OSError, ValueError) as exc:
                    logger.warning("imap: IDLE ended: %s", exc)
                    poller.close()
            else:
                stop.wait(settings.interval)
    finally:
        poller.close()
    return failed_rounds
