"""URL rules shared by every route: integer ids that fit the database's id columns.

Every id column is a 32-bit INTEGER on PostgreSQL. A path like `/attachments/9999999999` used to
reach the view and fail in the database ("integer out of range" → 503); with this converter the
router itself answers 404 and no query is sent. It replaces Flask's built-in `int` converter, so
every `<int:…>` in every blueprint (and any added later) is bounded without opting in.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

#: The largest value of a PostgreSQL INTEGER (and of our SQLite ids, which mirror it).
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """A positive database id: 1 … 2**31-1, digits only, at most 10 of them (no huge-int parsing)."""

    regex = r"\d{1,10}"

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_url_map(app: Flask) -> None:
    """Install the bounded id converter before any blueprint adds its rules (rules compile on add)."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["id"] = IdConverter


# --- the public address -----------------------------------------------------------------------
#
# Every absolute URL the app hands out (mail, webhooks, exports, the API) is built from BASE_URL, never
# from the request: a forged `Host:` header must not end up in a password-reset mail. Requests for
# another host are refused (Flask's TRUSTED_HOSTS, derived here from BASE_URL plus ALLOWED_HOSTS).

#: The address the demo, tests and CLI tools fall back to when BASE_URL is not set.
LOCAL_BASE_URL = "http://127.0.0.1:5000"
LOCAL_HOSTS = ("127.0.0.1", "localhost")


class BaseUrlError(RuntimeError):
    """BASE_URL is missing or not an absolute http(s) URL."""


def check_base_url(value: str) -> str:
    """Return BASE_URL without its trailing slash, or raise BaseUrlError naming the problem."""
    from urllib.parse import urlsplit

    value = (value or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BaseUrlError(f"BASE_URL must be the public address such as https://helpdesk.example.jp, not {value!r}.")
    return value.rstrip("/")


def configure_base_url(app: Flask, *, may_default: bool, local: bool) -> None:
    """Settle BASE_URL and TRUSTED_HOSTS at start-up (refusing to start without BASE_URL unless allowed).

    `may_default`: demo/test/debug/CLI tools may run without BASE_URL (the local address is used);
    `local`: also trust 127.0.0.1 and localhost (demo, tests, debug).
    """
    from urllib.parse import urlsplit

    raw = (app.config.get("BASE_URL") or "").strip()
    if not raw:
        if not may_default:
            raise BaseUrlError("BASE_URL is not set: export BASE_URL=https://<public host> (links in mails and the "
                               "API are built from it, and requests for other hosts are refused), "
                               "or run `helpdesk demo` for the demo.")
        raw = LOCAL_BASE_URL
    app.config["BASE_URL"] = check_base_url(raw)
    if app.config.get("TRUSTED_HOSTS") is None:  # an explicit TRUSTED_HOSTS list wins
        trust_hosts(app, [urlsplit(app.config["BASE_URL"]).hostname, *app.config.get("ALLOWED_HOSTS", ())],
                    reset=True)
    if local:
        trust_hosts(app, LOCAL_HOSTS)


def trust_hosts(app: Flask, hosts, *, reset: bool = False) -> None:
    """Add host names to the ones requests may be addressed to (`Host:` / forwarded host)."""
    current = [] if reset else list(app.config.get("TRUSTED_HOSTS") or [])
    for host in hosts:
        host = (host or "").strip().lower()
        if host and host not in current:
            current.append(host)
    app.config["TRUSTED_HOSTS"] = current


def base_url() -> str:
    """The configured public address (no trailing slash)."""
    from flask import current_app

    return current_app.config["BASE_URL"].rstrip("/")


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for `endpoint` on BASE_URL, with or without a request (mail jobs, CLI)."""
    from urllib.parse import urlsplit

    from flask import current_app

    parts = urlsplit(base_url())
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapter.build(endpoint, values, force_external=True)


def absolute(path: str) -> str:
    """BASE_URL + an app path such as "/tickets/HD-000001"."""
    return base_url() + "/" + path.lstrip("/")
