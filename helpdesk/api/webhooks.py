"""Outgoing event webhooks: URL safety (no SSRF), HMAC signatures, and the transport of a signed body.

The outbox dispatcher (`helpdesk.notify.jobs`) claims a `kind='webhook'` row with a lease, signs the
body (`sign`, `X-Helpdesk-Signature: sha256=<hex>`), and calls `send`, which re-checks every resolved
address of the URL and connects to the checked address only (no DNS rebinding between check and
connect, no redirects followed); the dispatcher logs the attempt and schedules retries with backoff.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from helpdesk.api.models import WebhookSubscription


logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Helpdesk-Signature"
TIMEOUT_SECONDS = 10
#: Retries of a subscriber that is down wait up to 6 h (the dispatcher's backoff, capped here).
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
        raise Unresolvable(_l("ホスト名「%(host)s」を解決できません。", host=host)) from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_url(url: str, allowed_hosts=(), resolver=None) -> Target:
    """Validate a webhook URL; every address it resolves to must be public unless the host is allow-listed."""
    if not isinstance(url, str) or len(url) > 2000:
        raise UnsafeURL(_l("URLは2000文字以内で入力してください。"))
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(_l("URLの形式が正しくありません。")) from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(_l("URLは http:// または https:// で始めてください。"))
    if not parts.hostname:
        raise UnsafeURL(_l("URLにホスト名がありません。"))
    if parts.username or parts.password:
        raise UnsafeURL(_l("URLに利用者名やパスワードを含めないでください。"))
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    addresses = (resolver or resolve)(host, port)
    if not addresses:
        raise Unresolvable(_l("ホスト名「%(host)s」を解決できません。", host=host))
    if not _allowed(host, allowed_hosts):
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if _forbidden(ip):
                raise UnsafeURL(_l("このURLは内部向けのアドレス（%(address)s）を指しているため登録できません。"
                                   "必要な場合は管理者が許可リスト（WEBHOOK_ALLOWED_HOSTS）に追加してください。",
                                   address=address))
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


def resolve_secret(session, secret_ref: str | None) -> str | None:
    """The signing secret named by an outbox row's headers["secret_ref"] ("webhook_subscription:<id>")."""
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


def send(url: str, body: bytes, headers: dict[str, str], *, allowed_hosts=(), resolver=None
         ) -> tuple[int | None, str | None, bool]:
    """Post a signed body to a subscriber's URL, re-checking every address it resolves to now.

    Returns (HTTP status or None, error or None, permanent): a URL that now points inward is refused
    for good; DNS and network errors and non-2xx answers are retried by the dispatcher.
    """
    try:
        target = check_url(url, allowed_hosts, resolver)
        status, text = post_json(target, body, headers)
    except Unresolvable as exc:
        return None, f"dns: {exc}", False
    except UnsafeURL as exc:
        return None, f"refused: {exc}", True
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{exc.__class__.__name__}: {exc}"[:500], False
    if not 200 <= status < 300:
        return status, f"HTTP {status}: {text[:300]}", False
    return status, None, False
