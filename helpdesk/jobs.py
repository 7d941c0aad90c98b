"""The job queue: RQ on Redis when REDIS_URL is set, in-process otherwise.

Jobs are plain functions taking ids and primitives. Enqueue them only after the commit that
created the rows they read: use `enqueue_after_commit(session, ...)` from inside services.
"""
from __future__ import annotations

import functools
import importlib
import logging
from typing import Any, Callable

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

_PENDING_KEY = "helpdesk_after_commit_jobs"


def _resolve(func: Callable | str) -> Callable:
    if callable(func):
        return func
    module, _, name = func.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _path(func: Callable | str) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def redis_connection(url: str | None = None):
    url = url or current_app.config["REDIS_URL"]
    return _redis_for(url)


@functools.lru_cache(maxsize=8)
def _redis_for(url: str):
    # One client (and connection pool) per URL and process: a new client per call costs a TCP
    # connect + handshake on every enqueue. redis-py pools are thread-safe and fork-aware.
    from redis import Redis

    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def get_queue(name: str = "default"):
    from rq import Queue

    return Queue(name, connection=redis_connection())


def enqueue(func: Callable | str, *args: Any, queue: str = "default", **kwargs: Any) -> bool:
    """Run `func(*args)` on a worker (RQ) or right now in-process; False if Redis was unreachable.

    A failed enqueue is logged, never raised: the rows the job would read are committed and
    the periodic sweeps (`helpdesk notify sweep`, `helpdesk sla sweep`) pick them up later.
    """
    app = current_app._get_current_object()
    if app.config.get("RQ_ASYNC") and app.config.get("REDIS_URL"):
        try:
            get_queue(queue).enqueue(_path(func), *args, job_timeout=kwargs.pop("job_timeout", 300), **kwargs)
            return True
        except Exception as exc:  # redis down: the sweeper re-enqueues from the database
            logger.warning("enqueue of %s failed (%s); left for the sweeper", _path(func), exc)
            return False
    # In-process: a fresh app context gives the job its own database session.
    with app.app_context():
        try:
            _resolve(func)(*args)
        except Exception:
            logger.exception("in-process job %s%r failed", _path(func), args)
            if app.config.get("JOBS_RAISE"):
                raise
    return True


def enqueue_after_commit(session: Session, func: Callable | str, *args: Any, queue: str = "default") -> None:
    """Enqueue once the session's current transaction commits (dropped on rollback)."""
    session.info.setdefault(_PENDING_KEY, []).append((func, args, queue))


def enqueue_batch(items: list[tuple[Callable | str, tuple, str]]) -> bool:
    """Enqueue several (func, args, queue) at once: one Redis round trip for all of them (RQ).

    In-process (no Redis) they run one after the other, as `enqueue` would. A failed enqueue is
    logged and left to the sweepers, never raised.
    """
    if not items:
        return True
    app = current_app._get_current_object()
    if not (app.config.get("RQ_ASYNC") and app.config.get("REDIS_URL")):
        for func, args, queue in items:
            enqueue(func, *args, queue=queue)
        return True
    from rq import Queue

    try:
        connection = redis_connection()
        by_queue: dict[str, list] = {}
        for func, args, queue in items:
            by_queue.setdefault(queue, []).append(Queue.prepare_data(_path(func), args=args, timeout=300))
        with connection.pipeline() as pipe:
            for name, datas in by_queue.items():
                Queue(name, connection=connection).enqueue_many(datas, pipeline=pipe)
            pipe.execute()
        return True
    except Exception as exc:  # redis down: the sweepers re-enqueue from the database
        logger.warning("enqueue of %d jobs failed (%s); left for the sweepers", len(items), exc)
        return False


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a released SAVEPOINT: wait for the real commit
        return
    pending = session.info.pop(_PENDING_KEY, None)
    if not pending or not has_app_context():
        return
    enqueue_batch(pending)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction) -> None:
    # Only the outermost transaction's rollback discards the jobs; a rolled-back SAVEPOINT
    # (begin_nested) leaves the enclosing unit of work, and its jobs, intact.
    if previous_transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)
