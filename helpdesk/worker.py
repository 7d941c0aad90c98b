"""`helpdesk worker`: an RQ worker that outlives Redis outages.

RQ's own loop retries a lost connection only while it waits for a job; anywhere else (registering
at start, the heartbeat while a job runs, recording a result) a Redis error ends the worker, and the
process exits with code 1. Here the worker is run in a loop: when Redis is unreachable — at start or
later — the process waits and reconnects with exponential backoff (1 s doubling to 30 s), logging
each wait and the reconnection, lets a job that was running finish first, and then starts a fresh RQ
worker. Mail left pending meanwhile is handed over again on every (re)connection (`on_connect`).
SIGTERM / SIGINT still stop it: during a wait at once, during a job after the job (RQ's warm stop).
"""
from __future__ import annotations

import logging
import os
import signal
import time
from typing import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Worker

logger = logging.getLogger("helpdesk.worker")

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)
FIRST_DELAY = 1.0
MAX_DELAY = 30.0


class AppWorker(Worker):
    """RQ's worker, run inside the app context by `helpdesk worker`."""

    def fork_work_horse(self, job, queue):
        from helpdesk.extensions import db

        db.engine.dispose(close=False)  # never share pooled connections with the forked child
        return super().fork_work_horse(job, queue)

    def unsubscribe(self):
        # redis-py 8's PubSubWorkerThread.stop() joins the thread, which reads with RQ's 60 s timeout:
        # a stop request could hang for up to a minute. Stop it with a short wait, then close.
        thread = self.pubsub_thread
        if thread is not None:
            self.log.info("Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name)
            try:
                thread.stop(timeout=1)
            except TypeError:  # redis-py before 8: stop() takes no timeout and does not wait
                thread.stop()
            try:
                self.pubsub.close()
            except Exception:
                pass
            self.pubsub_thread = None


class _Stop(Exception):
    """A stop signal arrived while waiting for Redis (or for a job to end)."""


def _stop_on_signal() -> None:
    def handler(signum, _frame):
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _reachable(connection) -> Exception | None:
    try:
        connection.ping()
        return None
    except REDIS_ERRORS as exc:
        return exc


def _wait_for_redis(connection, first_delay: float, max_delay: float, sleep: Callable[[float], None]) -> None:
    delay, waited, error = first_delay, 0.0, _reachable(connection)
    while error is not None:
        logger.warning("Redis unreachable (%s); retrying in %.0f s", error, delay)
        sleep(delay)
        waited += delay
        delay = min(delay * 2, max_delay)
        error = _reachable(connection)
    if waited:
        logger.warning("Redis reachable again after %.0f s; worker (re)starting", waited)


def _drop(worker) -> None:
    """Stop the lost worker's pub/sub thread (RQ's teardown could not: it failed on Redis before)."""
    try:
        worker.unsubscribe()
    except Exception:
        pass


def _finish_running_job(worker) -> None:
    """A job whose worker lost Redis keeps running in its forked child: let it end before going on."""
    pid = getattr(worker, "horse_pid", 0)
    if not pid:
        return
    logger.warning("waiting for the running job (pid %s) to end before reconnecting", pid)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def run(connection, make_worker: Callable[[], object], *, burst: bool = False,
        on_connect: Callable[[], None] | None = None, first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY, sleep: Callable[[float], None] = time.sleep) -> None:
    """Run RQ workers from `make_worker()` until stopped (or, with `burst`, until the queues are empty)."""
    _stop_on_signal()
    try:
        while True:
            _wait_for_redis(connection, first_delay, max_delay, sleep)
            if on_connect is not None:
                try:
                    on_connect()
                except Exception:  # the sweep is a courtesy: the cron `notify sweep` does it too
                    logger.exception("re-enqueueing due rows after connecting failed")
            worker, lost = make_worker(), None
            try:
                worker.work(burst=burst, with_scheduler=False)
            except REDIS_ERRORS as exc:  # RQ's teardown could not unregister: Redis is gone
                lost = exc
            finally:
                _stop_on_signal()  # RQ's handlers are bound to the finished worker
            if getattr(worker, "_shutdown_requested_date", None) is not None:
                _finish_running_job(worker)
                logger.info("worker stopped on request")
                return
            lost = lost or _reachable(connection)
            if lost is None:
                if burst:
                    return
                # RQ ended its loop on some other error (already logged by RQ): start a new one after a pause.
                logger.warning("RQ worker loop ended unexpectedly; restarting in %.0f s", first_delay)
                sleep(first_delay)
                continue
            logger.warning("lost the connection to Redis (%s); reconnecting", lost)
            _drop(worker)
            _finish_running_job(worker)
    except _Stop as stop:
        logger.info("worker stopped by %s", stop)


def log_to_stderr() -> None:
    """Show this module's messages (waits, reconnections) like RQ's own, when logging is not configured."""
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
