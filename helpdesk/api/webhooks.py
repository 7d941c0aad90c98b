"""Outgoing event webhooks: URL safety (no SSRF), HMAC signatures, and the delivery of outbox rows.

The delivery path (`deliver(session, outbox_id)`) is written so the notify domain can adopt it:
it claims a pending `kind='webhook'` outbox row with a lease, re-checks every resolved address of the
URL, connects to the checked address only (no DNS rebinding between check and connect, no
redirects followed), signs the body with HMAC-SHA256 (`X-Helpdesk-Signature: sha256=<hex>`), logs a
DeliveryAttempt and schedules retries with exponential backoff.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update

from helpdesk.common import utcnow

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Helpdesk-Signature"
TIMEOUT_SECONDS = 10
LEASE_SECONDS = 60
#: Delay before attempt n+1 (n = attempts so far): 30 s, 1 min, 2 min, 4 min … capped at 6 h.
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 6 * 3600


class UnsafeURL(ValueError):
    """The URL may not be called (bad scheme, or it resolves to an address we never call)."""


class Unresolvable(UnsafeURL):
    """The host name does not resolve (now): refused at subscription time, retried at delivery time."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def _allowed(host: str, allowed_hosts) -> bool:
    host = host.lower().rstrip(".")
    return any(host == str(h).lower().rstrip(".") for h in (allowed_hosts or ()))


def _forbidden(ip: ipaddress._BaseAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"ホスト名「{host}」を解決できません。") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_url(url: str, allowed_hosts=(), resolver=None) -> Target:
    """Validate a webhook URL; every address it resolves to must be public unless the host is allow-listed."""
    if not isinstance(url, str) or len(url) > 2000:
        raise UnsafeURL("URLは2000文字以内で入力してください。")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("URLの形式が正しくありません。") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("URLは http:// または https:// で始めてください。")
    if not parts.hostname:
        raise UnsafeURL("URLにホスト名がありません。")
    if parts.username or parts.password:
        raise UnsafeURL("URLに利用者名やパスワードを含めないでください。")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    addresses = (resolver or resolve)(host, port)
    if not addresses:
        raise Unresolvable(f"ホスト名「{host}」を解決できません。")
    if not _allowed(host, allowed_hosts):
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if _forbidden(ip):
                raise UnsafeURL(f"このURLは内部向けのアドレス（{address}）を指しているため登録できません。"
                                "必要な場合は管理者が許可リスト（WEBHOOK_ALLOWED_HOSTS）に追加してください。")
    return Target(parts.scheme, host, port, path, tuple(addresses))


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature or "")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, **kw):
        super().__init__(host, port, **kw)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, **kw):
        super().__init__(host, port, context=ssl.create_default_context(), **kw)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post_json(target: Target, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_SECONDS) -> tuple[int, str]:
    """POST to the first checked address of `target`; never follows redirects. Returns (status, body head)."""
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target.host, target.port, target.addresses[0], timeout=timeout)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read(2000).decode("utf-8", "replace")
        return response.status, text
    finally:
        conn.close()


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_BASE_SECONDS * (2 ** max(attempts - 1, 0)), BACKOFF_CAP_SECONDS))


def resolve_secret(session, secret_ref: str | None) -> str | None:
    """The signing secret named by an outbox row's headers["secret_ref"] ("webhook_subscription:<id>")."""
    from helpdesk.api.models import WebhookSubscription

    if not secret_ref:
        return None
    kind, _, ident = secret_ref.partition(":")
    if kind == "webhook_subscription" and ident.isdigit():
        sub = session.get(WebhookSubscription, int(ident))
        return sub.secret if sub is not None else None
    if kind == "config":
        from flask import current_app

        return current_app.config.get(ident) or None
    return None


def _claim(session, outbox_id: int, now: dt.datetime) -> bool:
    from helpdesk.notify.models import Outbox

    result = session.execute(
        update(Outbox)
        .where(Outbox.id == outbox_id, Outbox.kind == "webhook", Outbox.next_attempt_at <= now,
               or_(Outbox.state == "pending",
                   (Outbox.state == "sending") & (Outbox.lease_until < now)))
        .values(state="sending", lease_until=now + dt.timedelta(seconds=LEASE_SECONDS))
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def deliver(session, outbox_id: int, *, allowed_hosts=(), resolver=None, now: dt.datetime | None = None) -> str:
    """Deliver one webhook outbox row if it is due; returns its state afterwards (or 'skipped')."""
    from helpdesk.notify.models import DeliveryAttempt, Outbox

    now = now or utcnow()
    if not _claim(session, outbox_id, now):
        return "skipped"
    row = session.get(Outbox, outbox_id)
    session.refresh(row)
    body = json.dumps(row.payload or {}, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    secret = resolve_secret(session, (row.headers or {}).get("secret_ref"))
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "helpdesk-webhooks/1",
               "X-Helpdesk-Event": str((row.payload or {}).get("event", row.purpose)),
               "X-Helpdesk-Delivery": str(row.id)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    started = time.monotonic()
    status, error = None, None
    try:
        target = check_url(row.recipient, allowed_hosts, resolver)
        status, text = post_json(target, body, headers)  # noqa: F841
        if not 200 <= status < 300:
            error = f"HTTP {status}: {text[:300]}"
    except Unresolvable as exc:
        error = f"dns: {exc}"
    except UnsafeURL as exc:
        error = f"refused: {exc}"
    except (OSError, http.client.HTTPException) as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:500]
    duration = int((time.monotonic() - started) * 1000)
    row.attempts += 1
    session.add(DeliveryAttempt(outbox_id=row.id, at=now, ok=error is None, status_code=status,
                                error=error, duration_ms=duration))
    row.lease_until = None
    if error is None:
        row.state, row.sent_at, row.last_error = "sent", now, None
        row.response = {"status": status}
    else:
        row.last_error = error
        permanent = error.startswith("refused:")
        if permanent or row.attempts >= (row.max_attempts or 8):
            row.state = "failed"
        else:
            row.state = "pending"
            row.next_attempt_at = now + backoff(row.attempts)
    session.commit()
    return row.state


def due_webhooks(session, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of webhook rows waiting for a (re)try."""
    from helpdesk.notify.models import Outbox

    now = now or utcnow()
    return list(session.scalars(
        select(Outbox.id).where(Outbox.kind == "webhook", Outbox.purpose != "tracker",  # tracker rows: insights sender
                                Outbox.next_attempt_at <= now,
                                or_(Outbox.state == "pending",
                                    (Outbox.state == "sending") & (Outbox.lease_until < now)))
        .order_by(Outbox.next_attempt_at).limit(limit)))
