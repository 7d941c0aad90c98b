"""Webhook rows go through the same deliver job as mail (handed to the API domain's signed sender)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from helpdesk.notify import jobs, service
from helpdesk.notify.models import Outbox


@pytest.fixture
def receiver(app):
    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    saved = app.config.get("WEBHOOK_ALLOWED_HOSTS")
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ["127.0.0.1"]
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    app.config["WEBHOOK_ALLOWED_HOSTS"] = saved
    server.shutdown()


def test_webhook_row_delivered_even_when_mail_is_due(db, app, receiver, mail_port):
    url, got = receiver
    saved = app.config["RQ_ASYNC"], app.config["REDIS_URL"]
    # Queue both rows without running their jobs, then run only the webhook's job.
    app.config["RQ_ASYNC"], app.config["REDIS_URL"] = True, "redis://127.0.0.1:1/0"
    try:
        service.queue_email(db.session, to="a@example.jp", subject="s", body_text="b", purpose="test")
        hook = service.queue_webhook(db.session, url=url, payload={"event": "ticket.created", "ref": "HD-000001"},
                                     purpose="webhook:ticket.created")
        db.session.commit()
    finally:
        app.config["RQ_ASYNC"], app.config["REDIS_URL"] = saved
    assert jobs.deliver(hook.id) == "sent"
    assert len(got) == 1 and json.loads(got[0][1])["ref"] == "HD-000001"
    db.session.expire_all()
    assert db.session.get(Outbox, hook.id).state == "sent"
    assert jobs.deliver(hook.id) == "skipped"
    assert len(got) == 1
    mail = db.session.scalar(select(Outbox).where(Outbox.kind == "email"))
    assert mail.state in ("pending", "sending", "sent")
