"""Request hygiene and response hardening applied to every request."""
from __future__ import annotations

import datetime as dt
import logging
import secrets
import unicodedata
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, abort, current_app, g, render_template, request, session
from flask_login import current_user, logout_user
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)

MAX_PAGE = 10_000


def client_ip() -> str:
    # ProxyFix (configured by TRUSTED_PROXIES) has already rewritten remote_addr when we trust a proxy.
    return request.remote_addr or "unknown"


def _check_input() -> None:
    """Reject NUL bytes and invalid UTF-8 in the URL and form fields with 400, before any view."""
    try:
        raw_qs = request.query_string.decode("utf-8")
        raw_path = request.path
        # Werkzeug leaves undecodable %XX sequences as text: decode strictly ourselves.
        unquote_to_bytes(raw_qs.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        abort(400)
    if "\x00" in raw_path or "%00" in raw_qs or "\x00" in raw_qs:
        abort(400)
    for value in request.args.values():
        if "\x00" in value or "\ufffd" in value:
            abort(400)
    page = request.args.get("page")
    if page is not None and (not page.isdigit() or int(page) > MAX_PAGE):
        abort(404)
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype == "application/x-www-form-urlencoded":
        # The body is bounded by MAX_CONTENT_LENGTH; the form is parsed later from the cached bytes.
        raw = request.get_data(cache=True)
        try:
            decoded = unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise _FormRefused(raw)
        if "\x00" in decoded:
            raise _FormRefused(raw)
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        for value in request.form.values():
            if "\x00" in value or "\ufffd" in value:
                abort(400)


#: Form fields never echoed back on the refusal page (secrets and machinery, not the user's text).
_NOT_ECHOED = ("password", "csrf_token", "nonce", "token", "secret", "current_password", "new_password")


class _FormRefused(Exception):
    """A form body that is not valid UTF-8 (or holds NUL): refused, but the user's text is given back."""

    def __init__(self, raw: bytes):
        super().__init__("form body is not valid UTF-8")
        self.raw = raw

    def fields(self) -> list[tuple[str, str]]:
        """(name, value) pairs decoded leniently: undecodable bytes become U+FFFD, NULs are dropped."""
        from urllib.parse import unquote_to_bytes as unq

        out = []
        for pair in self.raw.split(b"&")[:100]:
            name, _, value = pair.partition(b"=")
            name_s = unq(name.replace(b"+", b" ")).decode("utf-8", "replace").replace("\x00", "")[:100]
            if not name_s or any(secret in name_s.lower() for secret in _NOT_ECHOED):
                continue
            value_s = unq(value.replace(b"+", b" ")).decode("utf-8", "replace").replace("\x00", "")
            if value_s.strip():
                out.append((name_s, value_s[:20_000]))
        return out


def _form_refused(exc: _FormRefused):
    from flask_babel import gettext as _

    message = _("送信された内容に、読み取れない文字が含まれていました。入力した内容は下に残してあります。"
                "コピーしてから前の画面に戻り、もう一度入力してください（読み取れなかった文字は「�」で示しています）。")
    if _wants_json():
        return _error_page(400, "Bad Request", message)
    return render_template("errors/error.html", code=400, title="Bad Request", message=message,
                           kept_fields=exc.fields()), 400


SEEN_AT_REFRESH_SECONDS = 60


def _session_timeouts() -> None:
    # No signed-in session (API calls with a bearer token, public pages): nothing to time out, and no
    # need to load the user.
    if "_user_id" not in session or not current_user.is_authenticated:
        return
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    started = session.get("login_at", now)
    idle_limit = current_app.config["SESSION_IDLE_MINUTES"] * 60
    absolute_limit = current_app.config["SESSION_ABSOLUTE_HOURS"] * 3600
    if now - session.get("seen_at", now) > idle_limit or now - started > absolute_limit:
        from flask import flash
        from flask_babel import gettext as _

        logout_user()
        lang = session.get("lang")
        session.clear()
        if lang:
            session["lang"] = lang
        g.session_expired = True
        flash(_("一定時間が過ぎたため、安全のためログアウトしました。もう一度ログインしてください。"), "warning")
        return
    # Refresh the idle clock at most once a minute. Writing it on every request re-sent the session cookie
    # with every response, so a background request (the intake form's duplicate hint) that started before
    # a form POST could answer after it and put back the older cookie — losing the POST's flash message.
    if now - session.get("seen_at", 0) >= SEEN_AT_REFRESH_SECONDS:
        session["seen_at"] = now


def _headers(response):
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    # Pages for signed-in users carry personal data: never cache them. The session says whether someone is
    # signed in without touching the user row (after a commit it would be reloaded just for this).
    signed_in = "_user_id" in session
    if signed_in or request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    elif "Cache-Control" not in response.headers and not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _error_page(code: int, title: str, message: str):
    if _wants_json():
        return {"type": "about:blank", "title": title, "status": code, "detail": message}, code, {
            "Content-Type": "application/problem+json"}
    return render_template("errors/error.html", code=code, title=title, message=message), code


def _fresh_user() -> None:
    # Tests push one app context around several requests; never reuse another request's user.
    g.pop("_login_user", None)


class _EscapedRecord(logging.LogRecord):
    """A log record whose message (after %-formatting with its arguments) shows control characters escaped."""

    def getMessage(self) -> str:
        from helpdesk.text import escape_controls

        return escape_controls(super().getMessage())


def install_log_escaping() -> None:
    """Escape control characters in every log message (log forging: a login name or subject with CR/LF
    must not start a fake line in the application log). Tracebacks (exc_info) are formatted apart and kept."""
    current = logging.getLogRecordFactory()
    if getattr(current, "helpdesk_escaping", False):
        return

    def factory(*args, **kwargs):
        record = current(*args, **kwargs)
        if type(record) is logging.LogRecord:
            record.__class__ = _EscapedRecord
        return record

    factory.helpdesk_escaping = True
    logging.setLogRecordFactory(factory)


def init_app(app: Flask) -> None:
    install_log_escaping()
    app.before_request(_fresh_user)
    app.before_request(_check_input)
    app.before_request(_session_timeouts)
    app.after_request(_headers)

    @app.before_request
    def _nonce():
        g.csp_nonce = secrets.token_urlsafe(16)

    app.register_error_handler(_FormRefused, _form_refused)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        from flask_babel import gettext as _

        messages = {
            400: _("リクエストの内容を読み取れませんでした。入力内容を確認してください。"),
            403: _("このページを開く権限がありません。"),
            404: _("ページが見つかりません。URLを確認してください。"),
            405: _("この操作はできません。"),
            413: _("送信されたデータが大きすぎます。ファイルのサイズを確認してください。"),
            429: _("短時間に操作が集中しました。しばらく待ってからもう一度お試しください。"),
        }
        code = exc.code or 500
        return _error_page(code, exc.name, messages.get(code, exc.description or ""))

    @app.errorhandler(DBAPIError)
    def _db_error(exc: DBAPIError):
        from helpdesk.extensions import db

        try:
            db.session.rollback()
        except Exception:  # the connection itself may be gone
            pass
        if database_unavailable(exc):
            logger.error("database unavailable: %s (route %s)", exc.__class__.__name__, request.endpoint)
            return _error_page(503, "Service Unavailable",
                               "ただいまシステムが一時的に利用できません。しばらくしてからもう一度お試しください。")
        return _internal_error(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        return _internal_error(exc)


#: Messages of SQLite's OperationalError that mean "busy or unreachable", not "bad statement".
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error", "database is busy")


def database_unavailable(exc: DBAPIError) -> bool:
    """Whether a database error means the database is gone or busy (503), not that our SQL is wrong (500).

    A dropped connection (SQLAlchemy marks it ``connection_invalidated``), a refused connection and a
    driver's InterfaceError are outages. psycopg raises OperationalError only for such conditions
    (connection failures, admin shutdown, cancelled statements); sqlite3 also uses OperationalError for
    "no such column" and syntax errors, so there only a locked/unopenable file counts.
    """
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False  # ProgrammingError, DataError, IntegrityError, InternalError, NotSupportedError
    module = type(exc.orig).__module__ if exc.orig is not None else ""
    if module.startswith("sqlite3"):
        return any(m in str(exc.orig).lower() for m in _SQLITE_UNAVAILABLE)
    return True


def _internal_error(exc: BaseException):
    """500 page with a reference id; the log gets the traceback, the id, the route and the user id."""
    reference = secrets.token_hex(6)
    user_id = None
    try:
        if current_user and current_user.is_authenticated:
            user_id = current_user.get_id()
    except Exception:  # the user load itself may be what failed
        pass
    logger.error("unhandled error ref=%s route=%s method=%s user_id=%s: %s", reference, request.endpoint,
                 request.method, user_id, exc.__class__.__name__, exc_info=exc)
    from flask_babel import gettext as _

    message = _("システムでエラーが発生しました。お手数ですが時間をおいてもう一度お試しください。"
                "お問い合わせの際は参照番号 %(ref)s をお伝えください。", ref=reference)
    if _wants_json():
        return ({"type": "about:blank", "title": "Internal Server Error", "status": 500, "detail": message,
                 "reference": reference}, 500, {"Content-Type": "application/problem+json"})
    return render_template("errors/error.html", code=500, title="Internal Server Error", message=message,
                           reference=reference), 500


#: C0 controls and space: a browser strips them from both ends of a URL (and drops tabs and line
#: breaks anywhere in it, so "/<TAB>/evil.tld" means "//evil.tld").
_URL_TRIMMED = "".join(chr(c) for c in range(0x21)) + "\x7f"


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, cleaned as a browser would read it; else None.

    The one check for every `next` / `back` / `return_to` / Referer the app redirects to. Control
    characters and whitespace are trimmed from the ends *before* judging (as browsers do), and a
    target with a control or invisible format character left inside is refused: browsers drop tabs and
    line breaks, so "/<TAB>/evil.tld" would be "//evil.tld" (another host) to them.
    """
    if not target or not isinstance(target, str):
        return None
    target = target.strip(_URL_TRIMMED).strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def safe_referrer() -> str | None:
    """The Referer as a same-site path (its host must be this request's host), or None."""
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc.lower() != request.host.lower():
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(path)


def redirect_back(target: str | None, fallback: str):
    """Redirect to `target` when safe_next accepts it, else to `fallback` (an url_for of this app)."""
    from flask import redirect

    return redirect(safe_next(target) or fallback)
