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
from helpdesk.ops.logs import job_meta

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
            from helpdesk.ops.logs import job_meta  # the request id follows the job into the worker's logs

            get_queue(queue).enqueue(_path(func), *args, job_timeout=kwargs.pop("job_timeout", 300),
                                     meta=job_meta(), **kwargs)
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


_BATCH_KEY = "helpdesk_after_commit_batches"
#: How long a pending drain job blocks the next one; after that a new item kicks a fresh one (lost job).
KICK_SECONDS = 300


def batch_after_commit(session: Session, func: Callable | str, item: int, queue: str = "default", lanes: int = 1) -> None:
    """After the commit, hand `item` to `func(items)`, coalesced with other processes' items.

    For work done per new row at a high rate (a delivery per mail, an insights pass per ticket): with
    Redis the item is pushed on a list and one drain job is queued only when none is pending (SET NX),
    so a busy desk makes one RQ job per burst instead of one per row — one pipelined round trip per
    commit either way. In-process (no Redis) `func([item])` runs right after the commit.
    `lanes` > 1 spreads the ids over that many lists, each with its own drain job, so that many
    workers can work in parallel (mail: each delivery waits on an SMTP server).
    Items are ids; a lost item (Redis down, worker killed) is picked up by the domain's sweeper.
    """
    session.info.setdefault(_BATCH_KEY, []).append((_path(func), item, queue, item % lanes if lanes > 1 else 0))


def batch_keys(func: str, lane: int = 0) -> tuple[str, str]:
    return f"helpdesk:batch:{func}:{lane}", f"helpdesk:batch-kick:{func}:{lane}"


def drain_batch(func: str, lane: int = 0, size: int = 200) -> int:
    """The drain job: clear the kick flag first (later items kick again), then work through the list."""
    connection = redis_connection()
    items_key, kick_key = batch_keys(func, lane)
    connection.delete(kick_key)
    target = _resolve(func)
    done = 0
    while True:
        raw = connection.lpop(items_key, size)
        if not raw:
            return done
        target([int(x) for x in raw])
        done += len(raw)


def enqueue_batch(items: list[tuple[Callable | str, tuple, str]],
                  batches: list[tuple[str, int, str, int]] | None = None, *, force_drain: bool = False) -> bool:
    """Enqueue several (func, args, queue) at once: one Redis round trip for all of them (RQ).

    `batches` are (func, item, queue, lane) for coalesced hand-over (see `batch_after_commit`);
    `force_drain` queues a drain job per lane even when one seems pending (sweepers: that job may be lost).
    In-process (no Redis) they run one after the other, as `enqueue` would. A failed enqueue is
    logged and left to the sweepers, never raised.
    """
    lanes: dict[tuple[str, str, int], list[int]] = {}
    for func, item, queue, lane in batches or ():
        lanes.setdefault((func, queue, lane), []).append(item)
    if not items and not lanes:
        return True
    app = current_app._get_current_object()
    if not (app.config.get("RQ_ASYNC") and app.config.get("REDIS_URL")):
        for func, args, queue in items:
            enqueue(func, *args, queue=queue)
        for (func, queue, _lane), group in lanes.items():
            enqueue(func, group, queue=queue)
        return True
    from rq import Queue

    try:
        connection = redis_connection()
        by_queue: dict[str, list] = {}
        for func, args, queue in items:
            by_queue.setdefault(queue, []).append(Queue.prepare_data(_path(func), args=args, timeout=300,
                                                                     meta=job_meta()))
        kicks: list[tuple[str, str, int]] = []
        with connection.pipeline() as pipe:
            for (func, queue, lane), group in lanes.items():
                items_key, kick_key = batch_keys(func, lane)
                pipe.rpush(items_key, *group)
                pipe.set(kick_key, 1, nx=True, ex=KICK_SECONDS)
                kicks.append((func, queue, lane))
            for name, datas in by_queue.items():
                Queue(name, connection=connection).enqueue_many(datas, pipeline=pipe)
            results = pipe.execute()
        # Results come in pipeline order: (rpush, set) per batch first.
        wake = [kick for n, kick in enumerate(kicks) if force_drain or results[2 * n + 1]]
        if wake:
            with connection.pipeline() as pipe:
                for func, queue, lane in wake:
                    Queue(queue, connection=connection).enqueue_many(
                        [Queue.prepare_data("helpdesk.jobs.drain_batch", args=(func, lane), timeout=600)],
                        pipeline=pipe)
                pipe.execute()
        return True
    except Exception as exc:  # redis down: the sweepers re-enqueue from the database
        logger.warning("enqueue of %d jobs / %d batch items failed (%s); left for the sweepers",
                       len(items), sum(map(len, lanes.values())), exc)
        return False


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a released SAVEPOINT: wait for the real commit
        return
    pending = session.info.pop(_PENDING_KEY, None)
    batches = session.info.pop(_BATCH_KEY, None)
    if not (pending or batches) or not has_app_context():
        return
    enqueue_batch(pending or [], batches)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction) -> None:
    # Only the outermost transaction's rollback discards the jobs; a rolled-back SAVEPOINT
    # (begin_nested) leaves the enclosing unit of work, and its jobs, intact.
    if previous_transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(_BATCH_KEY, None)
