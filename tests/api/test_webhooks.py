"""Event webhooks: SSRF refusal, signed delivery to a real loopback receiver, retry after failure, admin pages."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from helpdesk.api import service, webhooks
from helpdesk.api.models import WebhookSubscription
from helpdesk.audit import Actor
from helpdesk.notify import jobs as notify_jobs
from helpdesk.notify.models import DeliveryAttempt, Outbox


class Receiver:
    """A real HTTP server on 127.0.0.1 recording requests; answers the queued status codes."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status = outer.statuses.pop(0) if outer.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/helpdesk"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allow_loopback(app):
    saved = app.config.get("WEBHOOK_ALLOWED_HOSTS")
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ["127.0.0.1"]
    yield
    app.config["WEBHOOK_ALLOWED_HOSTS"] = saved


def _public_resolver(host, port):
    return ["93.184.216.34"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/x", "http://10.0.0.5/", "http://192.168.1.1/",
    "http://172.16.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://0.0.0.0/",
    "http://224.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/", "ftp://example.com/",
    "http://user:pw@example.com/", "javascript:alert(1)",
])
def test_unsafe_urls_refused(url):
    with pytest.raises(webhooks.UnsafeURL):
        webhooks.check_url(url)


def test_public_url_accepted_and_allow_list():
    target = webhooks.check_url("https://tracker.example.com/hooks?x=1", resolver=_public_resolver)
    assert target.port == 443 and target.path == "/hooks?x=1" and target.addresses == ("93.184.216.34",)
    assert webhooks.check_url("http://127.0.0.1:9/x", allowed_hosts=["127.0.0.1"]).addresses == ("127.0.0.1",)
    # A name resolving to any private address is refused (every address is checked).
    with pytest.raises(webhooks.UnsafeURL):
        webhooks.check_url("https://mixed.example.com/", resolver=lambda h, p: ["93.184.216.34", "10.1.2.3"])


def test_subscription_refuses_private_url(db):
    with pytest.raises(service.ApiServiceError) as err:
        service.create_subscription(db.session, name="内部", url="http://127.0.0.1:8080/", events=["ticket.created"],
                                    actor=Actor.system("t"))
    assert "url" in err.value.field_errors
    assert db.session.scalar(select(WebhookSubscription)) is None


def test_delivery_time_check_refuses_rebound_address(db, make_ticket, monkeypatch):
    sub = service.create_subscription(db.session, name="外部", url="https://hooks.example.com/in",
                                      events=["ticket.created"], actor=Actor.system("t"), resolver=_public_resolver)
    # At delivery time the name points at a private address: refused, never connected.
    monkeypatch.setattr(webhooks, "resolve", lambda h, p: ["10.0.0.7"])
    monkeypatch.setattr(webhooks, "post_json", lambda *a, **k: pytest.fail("must not connect"))
    make_ticket()  # its delivery runs in-process right after the commit
    row = db.session.scalar(select(Outbox).where(Outbox.object_ref == f"subscription:{sub.id}"))
    db.session.refresh(row)
    assert row.state == "failed" and row.attempts == 1
    attempt = db.session.scalar(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id == row.id))
    assert attempt.ok is False and "refused" in attempt.error


def test_signed_delivery_to_real_receiver_and_retry(db, app, allow_loopback, make_org, make_user, make_ticket,
                                                    agent, api_for):
    with Receiver() as receiver:
        receiver.statuses = [500]  # the first delivery fails, the retry succeeds
        sub = service.create_subscription(db.session, name="開発課題管理", url=receiver.url,
                                          events=["ticket.created", "ticket.resolved"], actor=Actor.system("t"),
                                          allowed_hosts=["127.0.0.1"])
        org = make_org()
        ticket = make_ticket(org=org, requester=make_user(org=org), subject="ワクチン割当の画面でエラー")
        # Delivered right after the commit (in-process jobs in tests): it failed with HTTP 500.
        row = db.session.scalar(select(Outbox).where(Outbox.object_ref == f"subscription:{sub.id}",
                                                     Outbox.purpose == "webhook:ticket.created"))
        db.session.refresh(row)
        assert len(receiver.requests) == 1
        assert row.state == "pending" and row.attempts == 1 and "HTTP 500" in row.last_error
        assert row.next_attempt_at > row.created_at
        # Not due yet: a sweep now sends nothing.
        assert notify_jobs.deliver_rows(db.session, [row.id], {"WEBHOOK_ALLOWED_HOSTS": ["127.0.0.1"]}) == \
            {row.id: "skipped"}
        # Due later: the retry is delivered and signed.
        later = row.next_attempt_at + dt.timedelta(seconds=1)
        assert notify_jobs.deliver_rows(db.session, [row.id], {"WEBHOOK_ALLOWED_HOSTS": ["127.0.0.1"]},
                                        now=later) == {row.id: "sent"}
        assert len(receiver.requests) == 2
        request = receiver.requests[-1]
        expected = "sha256=" + hmac.new(sub.secret.encode(), request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Helpdesk-Signature"] == expected
        assert webhooks.verify(sub.secret, request["body"], request["headers"]["X-Helpdesk-Signature"])
        payload = json.loads(request["body"])
        assert payload["event"] == "ticket.created" and payload["data"]["ref"] == ticket.ref
        assert payload["occurred_at"].endswith("+09:00")
        attempts = db.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id == row.id)
                                      .order_by(DeliveryAttempt.id)).all()
        assert [a.ok for a in attempts] == [False, True] and attempts[1].status_code == 204
        # A sent row is never sent again.
        assert notify_jobs.deliver_rows(db.session, [row.id], {"WEBHOOK_ALLOWED_HOSTS": ["127.0.0.1"]},
                                        now=later) == {row.id: "skipped"}
        # ticket.resolved through the API; ticket.updated is not subscribed.
        api = api_for(agent)
        api.patch(f"/tickets/{ticket.ref}", {"status": "resolved"})
        events = [json.loads(r["body"])["event"] for r in receiver.requests]
        assert events.count("ticket.resolved") == 1 and "ticket.updated" not in events


def test_backoff_grows_and_is_capped():
    backoff = notify_jobs.backoff
    cap = webhooks.BACKOFF_CAP_SECONDS
    assert backoff(1, cap=cap) < dt.timedelta(seconds=40) < backoff(3, cap=cap)
    assert backoff(50, cap=cap) <= dt.timedelta(seconds=cap * 1.2)
    assert backoff(50, cap=cap) >= dt.timedelta(seconds=cap * 0.8)


def test_admin_pages(db, client, make_user, login, allow_loopback):
    admin = make_user(roles="admin")
    target = make_user(roles="agent")
    login(admin)
    assert client.get("/admin/api-tokens").status_code == 200
    r = client.post("/admin/api-tokens", data={"name": "CTI", "user_email": target.email, "scopes": ["read"]})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "hd_" in html and "今だけ表示" in html
    bad = client.post("/admin/api-tokens", data={"name": "", "user_email": "ghost@example.jp", "scopes": ["read"]})
    assert bad.status_code == 400 and "名前を入力してください" in bad.get_data(as_text=True)
    token_id = db.session.scalar(select(service.ApiToken.id).where(service.ApiToken.name == "CTI"))
    assert client.post(f"/admin/api-tokens/{token_id}/revoke").status_code == 302
    assert db.session.get(service.ApiToken, token_id).revoked_at is not None
    refused = client.post("/admin/webhooks", data={"name": "x", "url": "http://10.0.0.1/", "events": ["ticket.created"]})
    assert refused.status_code == 400 and "内部向け" in refused.get_data(as_text=True)
    ok = client.post("/admin/webhooks", data={"name": "ok", "url": "http://127.0.0.1:9/x", "events": ["ticket.created"]})
    assert ok.status_code == 200
    sub = db.session.scalar(select(WebhookSubscription).where(WebhookSubscription.name == "ok"))
    assert sub.secret in ok.get_data(as_text=True)
    assert client.get(f"/admin/webhooks/{sub.id}").status_code == 200
    assert client.post(f"/admin/webhooks/{sub.id}/active", data={"active": "0"}).status_code == 302
    assert db.session.get(WebhookSubscription, sub.id).active is False


def test_admin_pages_need_admin(client, make_user, login):
    login(make_user(roles="agent"))
    assert client.get("/admin/api-tokens").status_code == 403
    assert client.get("/admin/webhooks").status_code == 403
