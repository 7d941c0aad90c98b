"""Settings from environment variables, with embedded defaults for a zero-setup demo."""
from __future__ import annotations

import os
from pathlib import Path
from helpdesk.api.ratelimit import parse_limit

DEFAULT_SECRET_KEY = "dev-insecure-change-me"


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise RuntimeError(f"{name} must be a number of seconds (0 or more), not {value!r}.")
    return seconds


def check_limit(name: str, value) -> str:
    """A rate such as "10 per 10 minutes"; refused with a clear message when malformed."""
    try:
        parse_limit(str(value))
    except (ValueError, TypeError):
        raise RuntimeError(f"{name}={value!r} is not a limit: write it like '10 per 10 minutes' "
                           "(a number, 'per', and second/minute/hour/day, optionally with a count).") from None
    return str(value)


def _limit(name: str, default: str) -> str:
    return check_limit(name, (os.environ.get(name) or "").strip() or default)


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def shipped_dir(name: str) -> str:
    """A top-level folder of the checkout (manuals/, migrations/), or the copy that a plain
    `pip install .` puts under <prefix>/share/helpdesk/ (pyproject.toml: data-files)."""
    import sys

    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return str(checkout)
    return str(Path(sys.prefix) / "share" / "helpdesk" / name)


def default_manuals_dir() -> str:
    return shipped_dir("manuals")


def load(instance_path: str) -> dict:
    """Build the configuration mapping from the environment."""
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'helpdesk.db'}"
    if db_url.startswith("postgres://"):
        db_url = "postgresql+psycopg://" + db_url[len("postgres://"):]
    elif db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg://" + db_url[len("postgresql://"):]
    redis_url = os.environ.get("REDIS_URL") or None
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY),
        "HELPDESK_DEMO": _bool("HELPDESK_DEMO"),
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        # Ping a pooled connection before use only after it sat idle this long (None = never ping;
        # SQLALCHEMY_ENGINE_OPTIONS["pool_pre_ping"] = True pings on every checkout instead).
        "DB_PING_IDLE_SECONDS": _seconds("DB_PING_IDLE_SECONDS", 2.0),
        "REDIS_URL": redis_url,
        # In-process jobs unless Redis is configured (the zero-setup demo).
        "RQ_ASYNC": redis_url is not None,
        # The public address: every absolute URL is built from it; required outside demo/test (routing.py).
        "BASE_URL": os.environ.get("BASE_URL", ""),
        # Host names accepted besides BASE_URL's (comma-separated); requests for any other host get 400.
        "ALLOWED_HOSTS": _list("ALLOWED_HOSTS"),
        "BABEL_DEFAULT_LOCALE": "ja",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Tokyo",
        "LANGUAGES": ["ja", "en"],
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 12 * 1024 * 1024),
        "ATTACHMENT_MAX_BYTES": _int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024),
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER") or str(Path(instance_path) / "uploads"),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "127.0.0.1"),
        "MAIL_PORT": _int("MAIL_PORT", 8025),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "helpdesk@example.jp"),
        # Mailbox polling (`helpdesk mail poll-imap`, helpdesk/notify/imap.py), the alternative to the SMTP
        # receiver. IMAP_SSL: ssl (IMAPS, default) | starttls | off (loopback hosts only); port 993/143 by default.
        "IMAP_HOST": os.environ.get("IMAP_HOST") or None,
        "IMAP_PORT": _int("IMAP_PORT", 0),
        "IMAP_USER": os.environ.get("IMAP_USER") or None,
        "IMAP_PASSWORD": os.environ.get("IMAP_PASSWORD") or None,
        "IMAP_PASSWORD_FILE": os.environ.get("IMAP_PASSWORD_FILE") or None,
        "IMAP_FOLDER": os.environ.get("IMAP_FOLDER") or "INBOX",
        "IMAP_SSL": os.environ.get("IMAP_SSL") or "ssl",
        "IMAP_SSL_VERIFY": _bool("IMAP_SSL_VERIFY", True),
        "IMAP_CA_FILE": os.environ.get("IMAP_CA_FILE") or None,
        "IMAP_PROCESSED_FOLDER": os.environ.get("IMAP_PROCESSED_FOLDER") or None,
        "IMAP_FAILED_FOLDER": os.environ.get("IMAP_FAILED_FOLDER") or None,
        "IMAP_INTERVAL": _seconds("IMAP_INTERVAL", 60.0),
        "IMAP_IDLE": _bool("IMAP_IDLE"),
        "IMAP_MAX_ATTEMPTS": _int("IMAP_MAX_ATTEMPTS", 3),
        "IMAP_TIMEOUT": _seconds("IMAP_TIMEOUT", 30.0),
        "IMAP_BATCH": _int("IMAP_BATCH", 50),
        "TRACKER_WEBHOOK_URL": os.environ.get("TRACKER_WEBHOOK_URL") or None,
        "TRACKER_WEBHOOK_SECRET": os.environ.get("TRACKER_WEBHOOK_SECRET") or None,
        "WEBHOOK_ALLOWED_HOSTS": _list("WEBHOOK_ALLOWED_HOSTS"),
        # Login throttling and lockout.
        "LOGIN_MAX_FAILURES": _int("LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCK_MINUTES": _int("LOGIN_LOCK_MINUTES", 30),
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "20 per minute"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        # Ticket creations per account and window (tickets/creation_limit.py); malformed values stop start-up.
        "TICKET_CREATE_LIMIT_REQUESTER": _limit("TICKET_CREATE_LIMIT_REQUESTER", "10 per 10 minutes"),
        "TICKET_CREATE_LIMIT_STAFF": _limit("TICKET_CREATE_LIMIT_STAFF", "600 per minute"),
        "TICKET_CREATE_LIMIT_MAIL_SENDER": _limit("TICKET_CREATE_LIMIT_MAIL_SENDER", "10 per hour"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Session policy: idle timeout refreshed on each request, absolute cap checked per request.
        "SESSION_IDLE_MINUTES": _int("SESSION_IDLE_MINUTES", 30),
        "SESSION_ABSOLUTE_HOURS": _int("SESSION_ABSOLUTE_HOURS", 12),
        "SESSION_COOKIE_HTTPONLY": True,
        # The cookie is sent only when the session changes (seen_at is rewritten at most once a minute):
        # a late answer to a background request must not put back an older cookie over a newer one.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", not _is_local(os.environ.get("BASE_URL", ""))),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "PASSWORD_RESET_HOURS": _int("PASSWORD_RESET_HOURS", 24),
        "TICKET_REOPEN_DAYS": _int("TICKET_REOPEN_DAYS", 14),
        "TICKET_AUTOCLOSE_DAYS": _int("TICKET_AUTOCLOSE_DAYS", 7),
        "WTF_CSRF_TIME_LIMIT": None,
        # Categories, SLA policies/calendar, webhook subscriptions and API tokens are cached per process this long
        # (a change made in this process applies at once; in other processes within this many seconds).
        "LOOKUP_CACHE_SECONDS": _seconds("LOOKUP_CACHE_SECONDS", 5.0),
        "MANUALS_DIR": os.environ.get("MANUALS_DIR") or default_manuals_dir(),
    }


def _is_local(base_url: str) -> bool:
    return base_url == "" or "127.0.0.1" in base_url or "localhost" in base_url
