"""Per-token API rate limit: a fixed window counted with one Redis round trip per request.

`API_RATE_LIMIT` ("600 per minute" by default) applies per token (by a hash of it, before any database
look-up) or per client address for requests without one. Windows are aligned to the clock, so the
reset time needs no second query: INCR and EXPIRE go out in one pipeline. Every answer carries
X-RateLimit-Limit / -Remaining / -Reset; a refused one is a 429 problem with Retry-After.

Counts live in Redis when `RATELIMIT_STORAGE_URI` is a redis:// URL (shared by all workers), else in
this process (the zero-setup demo and the tests). If Redis cannot be reached the request is let
through and a warning logged: the API must not stop because the counter store did.

(Flask-Limiter still guards the login and password forms; for the API it cost three Redis round
trips and about 0.6 ms of CPU per request, a tenth of a ticket creation.)
"""
from __future__ import annotations

import functools
import logging
import math
import threading
import time

from flask import current_app, g
from helpdesk.api import DEFAULT_RATE_LIMIT
from helpdesk.api.framework import problem, rate_limit_key

logger = logging.getLogger(__name__)

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_memory: dict[str, int] = {}
_memory_lock = threading.Lock()


@functools.lru_cache(maxsize=16)
def parse_limit(text: str) -> tuple[int, int]:
    """"600 per minute" / "10/second" / "1000 per 2 hours" → (amount, window seconds)."""
    cleaned = text.strip().lower().replace("/", " per ")
    amount_text, _, period = cleaned.partition(" per ")
    parts = period.split()
    if not parts:
        raise ValueError(f"rate limit {text!r}: expected e.g. '600 per minute'")
    count = int(parts[0]) if len(parts) == 2 else 1
    unit = parts[-1].rstrip("s")
    if unit not in _UNITS or int(amount_text) < 1 or count < 1:
        raise ValueError(f"rate limit {text!r}: expected e.g. '600 per minute'")
    return int(amount_text), count * _UNITS[unit]


def count(key: str, window: int, what: str = "API rate limit") -> int | None:
    """This window's count including this request; None when the store is unreachable.

    Shared by every fixed-window limit (the API's, ticket creation's in tickets/creation_limit.py)."""
    uri = current_app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if uri.startswith(("redis://", "rediss://", "unix://")):
        try:
            from helpdesk.jobs import redis_connection

            pipe = redis_connection(uri).pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, window + 5)
            return int(pipe.execute()[0])
        except Exception as exc:  # noqa: BLE001 - any Redis failure: fail open, loudly
            logger.warning("%s not counted (%s)", what, exc.__class__.__name__)
            return None
    with _memory_lock:
        if len(_memory) > 10_000:
            _memory.clear()
        _memory[key] = _memory.get(key, 0) + 1
        return _memory[key]


def check():
    """before_request of the API blueprint: count the request, refuse it over the limit."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    amount, window = parse_limit(current_app.config.get("API_RATE_LIMIT") or DEFAULT_RATE_LIMIT)
    now = time.time()
    slot = int(now // window)
    reset = (slot + 1) * window
    n = count(f"helpdesk:api-rate:{rate_limit_key()}:{window}:{slot}", window)
    if n is None:
        return None
    g.api_rate = (amount, max(0, amount - n), reset)
    if n > amount:
        retry = max(1, math.ceil(reset - now))
        return problem(429, "rate-limited",
                       f"リクエストが多すぎます（上限: {window}秒あたり{amount}回）。{retry}秒後にもう一度送信してください。",
                       headers={"Retry-After": str(retry)})
    return None


def add_headers(response):
    """after_request of the API blueprint."""
    rate = g.get("api_rate")
    if rate is not None:
        amount, remaining, reset = rate
        response.headers["X-RateLimit-Limit"] = str(amount)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = str(reset)
    return response
