"""Structured logs: one JSON object a line, with the request id, the user id, the route and the job.

- Every request gets a request id: the `X-Request-ID` header when the app sits behind trusted proxies
  (`TRUSTED_PROXIES` > 0; the proxy sets it) and the value is a plain token, else a new random one. It
  is returned in the response's `X-Request-ID` and put into the meta of every RQ job the request
  enqueues, so a worker's log lines for that job carry it too.
- After each request one access line: request id, user id (a number, never a name or e-mail), method,
  route (the URL rule, e.g. `/tickets/<ref>`; never the path or query, which may hold search words),
  status, duration in ms.
- `LOG_FORMAT=json` (the default outside tests/demo) makes every log record of the process a JSON line on
  stderr via `JsonFormatter`; messages are already escaped by `security.py`'s record factory.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
import sys
import time
import uuid

from flask import g, request

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("hd_request_id", default=None)
user_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("hd_user_id", default=None)
access_logger = logging.getLogger("helpdesk.access")

_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _current_job():
    try:
        from rq import get_current_job

        return get_current_job()
    except Exception:
        return None


def current_request_id() -> str | None:
    """The id of the request (or of the request that enqueued the running job)."""
    rid = request_id_var.get()
    if rid:
        return rid
    job = _current_job()
    if job is not None:
        return (job.meta or {}).get("request_id")
    return None


def job_meta() -> dict | None:
    """Meta for an RQ job enqueued now: the request id, when there is one."""
    rid = request_id_var.get()
    return {"request_id": rid} if rid else None


class JsonFormatter(logging.Formatter):
    """ts (UTC, ISO 8601), level, logger, message, request_id, user_id, job_id, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = current_request_id()
        if rid:
            entry["request_id"] = rid
        uid = user_id_var.get()
        if uid is not None:
            entry["user_id"] = uid
        job = _current_job()
        if job is not None:
            entry["job_id"] = job.id
        fields = getattr(record, "hd_fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _begin() -> None:
    rid = None
    if int(_app_config("TRUSTED_PROXIES", 0) or 0) > 0:
        given = request.headers.get("X-Request-ID", "")
        if _VALID_ID.fullmatch(given):
            rid = given
    rid = rid or uuid.uuid4().hex
    g.hd_request_id = rid
    g.hd_log_started = time.perf_counter()
    g.hd_tokens = (request_id_var.set(rid), user_id_var.set(_user_id()))


def _app_config(name: str, default=None):
    from flask import current_app

    return current_app.config.get(name, default)


def _user_id() -> int | None:
    try:
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            return int(current_user.id)
    except Exception:
        pass
    return None


def _finish(response):
    rid = g.get("hd_request_id")
    if rid:
        response.headers["X-Request-ID"] = rid
    started = g.pop("hd_log_started", None)
    uid = _user_id()
    user_id_var.set(uid)
    if started is not None:
        access_logger.info("request", extra={"hd_fields": {
            "user_id": uid, "method": request.method,
            "route": request.url_rule.rule if request.url_rule is not None else "unmatched",
            "status": response.status_code, "duration_ms": round((time.perf_counter() - started) * 1000, 1)}})
    return response


def _end(_exc=None) -> None:
    tokens = g.pop("hd_tokens", None)
    if tokens:
        request_id_var.reset(tokens[0])
        user_id_var.reset(tokens[1])


def install_json_logging(level: int = logging.INFO, stream=None) -> logging.Handler:
    """Send every record of the process as JSON lines to stderr (once per process)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return handler
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    return handler


def init_app(app) -> None:
    app.config.setdefault("LOG_FORMAT", os.environ.get("LOG_FORMAT", "json"))
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)
    quiet = app.testing or app.debug or app.config.get("HELPDESK_DEMO")
    if app.config["LOG_FORMAT"] == "json" and not quiet:
        install_json_logging()
