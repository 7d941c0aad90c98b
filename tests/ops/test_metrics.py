"""/metrics: token-protected Prometheus text with request latency by route, tickets by channel and desk gauges;
under gunicorn the workers' figures are merged (multiprocess mode)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def metrics_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-token")
    monkeypatch.setitem(app.config, "METRICS_DESK_CACHE_SECONDS", 0)
    return {"Authorization": "Bearer s3cret-token"}


def test_metrics_needs_the_token(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)
    assert client.get("/metrics").status_code == 404
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-token")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_metrics_report_routes_channels_and_desk_gauges(client, app, db, metrics_on, make_ticket, make_user):
    from helpdesk.notify.models import Outbox
    from helpdesk.ops.metrics import TICKETS_CREATED

    before = TICKETS_CREATED.labels("phone")._value.get()
    client.get("/healthz")
    make_ticket(channel="phone")
    db.session.add(Outbox(kind="email", recipient="a@example.jp", purpose="test", state="pending"))
    db.session.commit()
    user = make_user()
    client.post("/login", data={"email": user.email, "password": "wrong-password"})

    response = client.get("/metrics", headers=metrics_on)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = _samples(response.get_data(as_text=True))
    assert samples[("helpdesk_http_request_duration_seconds_count",
                    (("method", "GET"), ("route", "/healthz"), ("status", "200")))] >= 1
    assert TICKETS_CREATED.labels("phone")._value.get() == before + 1
    assert samples[("helpdesk_tickets_created_total", (("channel", "phone"),))] == before + 1
    assert samples[("helpdesk_outbox_pending", ())] >= 1
    assert samples[("helpdesk_outbox_oldest_pending_age_seconds", ())] >= 0
    assert samples[("helpdesk_login_failures_5m", (("reason", "failed"),))] >= 1
    assert ("helpdesk_sla_breached_open_tickets", ()) in samples
    text = response.get_data(as_text=True)
    assert user.email not in text and "/tickets/HD-" not in text  # routes are rules, no personal data


def _free_port() -> int:
    for port in range(5710, 5790):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 5710-5789")


def _get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_gunicorn_workers_are_merged(tmp_path):
    """Two gunicorn workers, PROMETHEUS_MULTIPROC_DIR: every request counted once, whichever worker answered."""
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}", SECRET_KEY="x" * 32,
               HELPDESK_INSTANCE=str(tmp_path), BASE_URL="http://127.0.0.1", METRICS_TOKEN="tok",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"), METRICS_DESK_CACHE_SECONDS="0")
    env.pop("REDIS_URL", None)
    helpdesk = Path(sys.executable).parent / "helpdesk"
    subprocess.run([str(helpdesk), "init-db"], env=env, check=True, capture_output=True, cwd=ROOT)
    port = _free_port()
    env["BASE_URL"] = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "python:helpdesk.ops.gunicorn_conf",
                             "-w", "2", "-b", f"127.0.0.1:{port}", "--reuse-port", "wsgi:app"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.3)

        def hit():
            for _ in range(20):
                assert _get(base + "/healthz")[0] == 200

        threads = [threading.Thread(target=hit) for _ in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        status, text = _get(base + "/metrics", {"Authorization": "Bearer tok"})
        assert status == 200, text
        samples = _samples(text)
        total = sum(v for (name, labels), v in samples.items()
                    if name == "helpdesk_http_request_duration_seconds_count" and ("route", "/healthz") in labels)
        assert total >= 61  # 60 + the first readiness probe (earlier failed probes never reached a worker)
        pids = {p.name.split("_")[-1] for p in (tmp_path / "prom").glob("histogram_*.db")}
        print(f"healthz requests counted: {total}, workers that recorded: {len(pids)}")
        assert status == 200 and _get(base + "/metrics")[0] == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
