"""The live queue behind gunicorn with two gthread workers (issue 15.2): an agent's SSE stream served by one
worker hears a ticket created through a request served by the other worker (Redis pub/sub). Runs on a
committed database of its own — a SQLite file, and a new PostgreSQL database when the run has one."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import TEST_REDIS
from tests.ops.conftest import BACKENDS, migrate, new_database, ops_app  # noqa: F401  (fixture)
from tests.ops.test_two_nodes import form_values

pytestmark = pytest.mark.skipif(not TEST_REDIS, reason="needs Redis (HELPDESK_TEST_REDIS_URL)")
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Live-Queue-Passw0rd!"
CHANNEL = "helpdesk:live:tickets"
#: gunicorn hook: each request's worker pid in the log as soon as it starts (the stream's ends much later).
HOOKS = """
def pre_request(worker, req):
    worker.log.info("REQ pid=%s %s %s", worker.pid, req.method, req.path)
"""


def _free_port() -> int:
    for port in range(5900, 6000):  # this suite's range
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 5900-5999")


def _pids(log: Path, method: str, path: str) -> list[int]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [int(p) for p in re.findall(rf"REQ pid=(\d+) {method} {re.escape(path)}\b", text)]


@pytest.mark.parametrize("kind", BACKENDS)
def test_stream_on_one_worker_hears_ticket_created_on_the_other(kind, new_database, tmp_path):  # noqa: F811
    url = new_database(kind)
    app = ops_app(url, str(tmp_path / "uploads"))
    migrate(app)
    with app.app_context():
        from helpdesk.accounts.models import Organisation, User
        from helpdesk.accounts.passwords import hash_password
        from helpdesk.extensions import db

        db.session.add(Organisation(code="131016", name="千代田区", kind="municipality", prefecture="東京都"))
        db.session.add(User(email="live@helpdesk.example.jp", name="受付 ライブ", roles="agent", state="activated",
                            password_hash=hash_password(PASSWORD), must_change_password=False))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    conf = tmp_path / "hooks.py"
    conf.write_text(HOOKS)
    log = tmp_path / "gunicorn.log"
    env = dict(os.environ, DATABASE_URL=url, REDIS_URL=TEST_REDIS, SECRET_KEY="live-" + "k" * 32, BASE_URL=base,
               UPLOAD_FOLDER=str(tmp_path / "uploads"), HELPDESK_LIVE_STREAM_SECONDS="25", LOG_FORMAT="text")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", str(conf), "-w", "2",
                             "-k", "gthread", "--threads", "4", "-b", f"127.0.0.1:{port}", "--log-level", "info",
                             "wsgi:app"], env=env, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        http = requests.Session()
        values = form_values(http.get(base + "/login").text, "(self)")
        values.update(email="live@helpdesk.example.jp", password=PASSWORD)
        assert http.post(base + "/login", data=values, allow_redirects=False).status_code == 302

        heard: list[dict] = []
        done = threading.Event()

        def listen():
            with http.get(base + "/agent/queue/stream", stream=True, timeout=40) as response:
                assert response.headers["Content-Type"].startswith("text/event-stream")
                for line in response.iter_lines(decode_unicode=True):
                    if line and line.startswith("data:") and '"ref"' in line:
                        heard.append(json.loads(line[5:]))
                    if done.is_set():
                        return

        bus = redis.Redis.from_url(TEST_REDIS)
        subscribers = dict(bus.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0)
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        # Wait until the stream's worker has subscribed (other suites may hold subscriptions too).
        deadline = time.monotonic() + 15
        while dict(bus.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) <= subscribers:
            assert time.monotonic() < deadline, "the stream never subscribed"
            time.sleep(0.1)
        stream_pid = _pids(log, "GET", "/agent/queue/stream")[0]

        created: list[tuple[str, int]] = []  # (ref, pid of the worker that created it)
        # A new connection per request (no keep-alive), so the kernel hands each to either worker.
        http.headers["Connection"] = "close"
        for attempt in range(20):
            values = form_values(http.get(base + "/agent/intake").text, "/agent/intake")
            values.update(subject=f"ライブ確認 {attempt}：ログインできません", description="初期パスワードで入れません。",
                          new_name=f"ライブ 太郎{attempt}", new_phone=f"03-5555-{1000 + attempt}",
                          new_org_code="131016")
            response = http.post(base + "/agent/intake", data=values, allow_redirects=True)
            assert response.status_code == 200, re.findall(r'class="field-error"[^>]*>([^<]*)', response.text)
            ref = re.search(r"HD-\d{6}", response.text).group(0)
            created.append((ref, _pids(log, "POST", "/agent/intake")[-1]))
            deadline = time.monotonic() + 10
            while not any(h["ref"] == ref and h["kind"] == "created" for h in heard):
                assert time.monotonic() < deadline, f"the stream did not hear {ref}: {heard}"
                time.sleep(0.05)
            if any(pid != stream_pid for _, pid in created) and len(created) >= 2:
                break
        done.set()
        # Both workers served: at least one ticket was created by the worker that does not hold the stream.
        assert len(set(_pids(log, "GET", "/agent/intake") + _pids(log, "POST", "/agent/intake")) | {stream_pid}) == 2
        assert any(pid != stream_pid for _, pid in created), (stream_pid, created)
        # Every ticket's 'created' event came once, with its ticket-event id for Last-Event-ID.
        for ref, _ in created:
            events = [h for h in heard if h["ref"] == ref and h["kind"] == "created"]
            assert len(events) == 1 and isinstance(events[0]["id"], int)
    finally:
        proc.send_signal(signal.SIGINT)  # quick shutdown: SIGTERM would wait for the open stream
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
