"""`helpdesk worker` outlives Redis (issue 13, point 14).

A real redis-server on a free port of its own, started, stopped and restarted by the test; the
worker is the real command in a subprocess. It is started while Redis is down, must wait (logging
it) and pick up a job once Redis is up; then Redis is stopped while the worker runs a job, and the
worker must let the job finish, wait, reconnect and run the next job after Redis restarts; SIGTERM
still stops it (exit code 0).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_DB, base_config

ROOT = Path(__file__).resolve().parents[1]
PORTS = range(5240, 5260)  # this test's share of the ports given to it

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


# --- jobs the worker runs (imported by the worker through PYTHONPATH) ----------------------------

def touch(path: str) -> None:
    Path(path).write_text(str(os.getpid()))


def slow_touch(path: str, seconds: float) -> None:
    Path(path + ".started").write_text("1")
    time.sleep(seconds)
    Path(path).write_text(str(os.getpid()))


# --- helpers -------------------------------------------------------------------------------------

def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {PORTS}")


def _start_redis(port: int, tmp_path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _until(lambda: _connects(port), 10, "redis-server did not start")
    return proc


def _stop_redis(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


def _connects(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _until(check, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(message)


def _enqueue(url: str, func: str, *args) -> None:
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(url)
    try:
        Queue("default", connection=connection).enqueue(func, *args)
    finally:
        connection.close()


@pytest.fixture
def database_url(tmp_path):
    if TEST_DB.startswith("postgresql"):
        return TEST_DB  # the session app created the tables
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    from helpdesk import create_app
    from helpdesk.extensions import db

    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return url


def test_worker_waits_for_redis_and_survives_a_restart(tmp_path, database_url):
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = tmp_path / "worker.log"
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=url, BASE_URL="http://127.0.0.1:5200",
               SECRET_KEY="worker-test-secret", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("HELPDESK_TEST_REDIS_URL", None)
    with open(log, "wb") as out:
        worker = subprocess.Popen([str(Path(sys.executable).with_name("helpdesk")), "worker", "-q", "default"],
                                  cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    redis = None
    try:
        # 1. Started while Redis is down: it waits (and says so) instead of exiting.
        _until(lambda: "Redis unreachable" in log.read_text(), 90, "no wait logged:\n" + log.read_text())
        time.sleep(1.5)
        assert worker.poll() is None, log.read_text()
        redis = _start_redis(port, tmp_path)
        first = tmp_path / "first"
        _enqueue(url, "tests.test_worker_redis.touch", str(first))
        _until(first.exists, 60, "job not run after Redis came up:\n" + log.read_text())
        assert "Redis reachable again" in log.read_text()

        # 2. Redis goes down while a job runs: the job ends, the worker waits, then reconnects.
        busy = tmp_path / "busy"
        _enqueue(url, "tests.test_worker_redis.slow_touch", str(busy), 3)
        _until(Path(str(busy) + ".started").exists, 30, "slow job not started:\n" + log.read_text())
        _stop_redis(redis)
        redis = None
        _until(busy.exists, 30, "running job did not finish without Redis")
        _until(lambda: log.read_text().count("Redis unreachable") >= 2, 60,
               "no second wait logged:\n" + log.read_text())
        time.sleep(2)
        assert worker.poll() is None, log.read_text()
        redis = _start_redis(port, tmp_path)
        second = tmp_path / "second"
        _enqueue(url, "tests.test_worker_redis.touch", str(second))
        _until(second.exists, 60, "job not run after Redis restarted:\n" + log.read_text())
        assert "lost the connection to Redis" in log.read_text()

        # 3. A stop request still stops it, cleanly.
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not stop the worker:\n" + log.read_text())
        assert code == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        if redis is not None:
            _stop_redis(redis)
