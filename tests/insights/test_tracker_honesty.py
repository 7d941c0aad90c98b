"""Issue 16.5: the send button only when a tracker is configured; "sent" only by actually sending.

The tracker is a real HTTP server on loopback (port in this helper's range), answering with an issue key.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpdesk.audit import Actor
from helpdesk.insights import service

SECRET = "honesty-test-secret"
PORTS = range(6210, 6230)
NOTE = "開発トラッカーとの連携が設定されていません。管理者に連絡してください。"


class Tracker:
    def __init__(self):
        self.requests = []
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                tracker.requests.append(json.loads(body))
                data = json.dumps({"key": "DEV-7", "html_url": "https://tracker.example.jp/DEV-7"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        for port in PORTS:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        else:  # pragma: no cover
            raise RuntimeError("no free port in 6210-6229")
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/issues"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tracker_config(app):
    saved = {k: app.config.get(k) for k in ("TRACKER_WEBHOOK_URL", "TRACKER_WEBHOOK_SECRET")}
    app.config.update(TRACKER_WEBHOOK_URL=None, TRACKER_WEBHOOK_SECRET=None)
    yield app.config
    app.config.update(saved)


def _accepted(db, make_ticket, po):
    ticket = make_ticket(subject="在庫一覧でE500", body="在庫一覧を開くとエラーになります")
    actor = Actor.for_user(po)
    problem = service.create_problem(db.session, actor, title="在庫一覧でE500", ticket_ids=[ticket.id])
    service.transition_problem(db.session, problem.id, "accepted", actor)
    return problem.id


def test_without_tracker_a_plain_note_and_no_send(client, login, po, make_ticket, db, tracker_config):
    pid = _accepted(db, make_ticket, po)
    login(po)
    html = client.get(f"/insights/problems/{pid}").get_data(as_text=True)
    assert NOTE in html
    assert "開発トラッカーへ送る</button>" not in html and f"/insights/problems/{pid}/send" not in html
    assert "TRACKER_WEBHOOK" not in html
    # "sent" is not among the manual choices, and choosing it by hand is refused with a plain message.
    assert 'value="sent"' not in html
    refused = client.post(f"/insights/problems/{pid}/transition", data={"to": "sent"})
    assert refused.status_code == 422
    assert "「開発へ送付済み」には、開発トラッカーへ送ったときだけ変わります。" in refused.get_data(as_text=True)
    # A crafted send without a tracker is refused with the same note; nothing changes.
    response = client.post(f"/insights/problems/{pid}/send", follow_redirects=True)
    body = response.get_data(as_text=True)
    assert NOTE in body and "TRACKER_WEBHOOK" not in body
    db.session.expire_all()
    assert service.get_problem(db.session, pid).status == "accepted"


def test_with_tracker_sending_sets_sent_and_stores_the_issue_key(client, login, po, make_ticket, db,
                                                                 tracker_config):
    pid = _accepted(db, make_ticket, po)
    login(po)
    with Tracker() as tracker:
        tracker_config.update(TRACKER_WEBHOOK_URL=tracker.url, TRACKER_WEBHOOK_SECRET=SECRET)
        html = client.get(f"/insights/problems/{pid}").get_data(as_text=True)
        assert "開発トラッカーへ送る</button>" in html and NOTE not in html
        response = client.post(f"/insights/problems/{pid}/send")
        assert response.status_code == 302
        assert len(tracker.requests) == 1 and tracker.requests[0]["title"].endswith("在庫一覧でE500")
    db.session.expire_all()
    problem = service.get_problem(db.session, pid)
    assert problem.status == "sent"
    assert (problem.external_ref, problem.external_url) == ("DEV-7", "https://tracker.example.jp/DEV-7")
    page = client.get(f"/insights/problems/{pid}").get_data(as_text=True)
    assert "DEV-7" in page and 'value="sent"' not in page
