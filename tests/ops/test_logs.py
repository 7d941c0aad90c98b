"""JSON logs: request id (trusted X-Request-ID or generated, returned, carried into jobs), user id, route,
status and duration — and no personal data."""
from __future__ import annotations

import io
import json
import logging
import os
import re

import pytest

from helpdesk import jobs
from helpdesk.ops import logs

LINES: list = []


def logging_job(value):
    logging.getLogger("helpdesk.test.job").info("job ran with %s", value)


@pytest.fixture
def captured():
    """JSON lines written by the helpdesk loggers during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    loggers = [logging.getLogger("helpdesk")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    for lg, level in saved:
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_request_id_generated_unless_proxies_are_trusted(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "TRUSTED_PROXIES", 0)
    response = client.get("/healthz", headers={"X-Request-ID": "from-the-client"})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert client.get("/healthz").headers["X-Request-ID"] != response.headers["X-Request-ID"]

    monkeypatch.setitem(app.config, "TRUSTED_PROXIES", 1)
    assert client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc"}).headers["X-Request-ID"] == "lb-1234.abc"
    forged = client.get("/healthz", headers={"X-Request-ID": "has spaces; and <html>" + "x" * 200}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", forged)


def test_access_line_has_ids_route_status_duration_and_no_personal_data(client, app, login, make_user, captured):
    agent = make_user(roles="agent", name="山田 太郎", email="yamada.agent@helpdesk.example.jp")
    login(agent)
    response = client.get("/agent/queue?q=山田 090-1111-2222")
    assert response.status_code == 200
    lines = [line for line in captured() if line["logger"] == "helpdesk.access"]
    line = lines[-1]
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["user_id"] == agent.id and line["route"] == "/agent/queue"
    assert line["status"] == 200 and line["duration_ms"] >= 0 and line["method"] == "GET"
    text = json.dumps(lines, ensure_ascii=False)
    assert "山田" not in text and "yamada" not in text and "1111-2222" not in text


def _redis():
    url = os.environ.get("HELPDESK_TEST_REDIS_URL")
    if url:
        from redis import Redis

        return Redis.from_url(url)
    import fakeredis

    return fakeredis.FakeStrictRedis()


def test_job_enqueued_by_a_request_logs_its_request_id(app, monkeypatch, captured):
    from rq import Queue, SimpleWorker

    connection = _redis()
    connection.flushdb()
    monkeypatch.setitem(app.config, "RQ_ASYNC", True)
    monkeypatch.setitem(app.config, "REDIS_URL", app.config.get("REDIS_URL") or "redis://fake")
    monkeypatch.setitem(app.config, "TRUSTED_PROXIES", 1)
    monkeypatch.setattr(jobs, "redis_connection", lambda url=None: connection)
    with app.test_request_context("/x", headers={"X-Request-ID": "req-42"}):
        logs._begin()
        assert jobs.enqueue("tests.ops.test_logs.logging_job", 7)
        assert jobs.enqueue_batch([("tests.ops.test_logs.logging_job", (8,), "default")])
        logs._end()
    assert logs.current_request_id() is None  # nothing leaks past the request
    queue = Queue("default", connection=connection)
    assert [job.meta.get("request_id") for job in queue.jobs] == ["req-42", "req-42"]
    SimpleWorker([queue], connection=connection).work(burst=True)
    ran = [line for line in captured() if line["logger"] == "helpdesk.test.job"]
    assert [(line["message"], line["request_id"]) for line in ran] == [("job ran with 7", "req-42"),
                                                                      ("job ran with 8", "req-42")]
    assert all(line.get("job_id") for line in ran)
