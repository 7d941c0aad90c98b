"""Sending a problem to the development tracker: a real HTTP receiver on loopback."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.insights import jobs, service, tracker
from helpdesk.notify import jobs as notify_jobs
from helpdesk.notify import service as notify_service

SECRET = "tracker-test-secret"


class Receiver:
    """Records every request; answers with the next scripted status (then the last one forever)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status, answer = receiver.script.pop(0) if len(receiver.script) > 1 else receiver.script[0]
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/issues"
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
    yield app.config
    app.config.update(saved)


def _accepted_problem(db, make_ticket, po, make_user=None, make_org=None):
    requester = make_user(name="山田 太郎", org=make_org()) if make_user else None
    t1 = make_ticket(subject="在庫一覧でE500", body="山田 太郎です。在庫一覧を開くとエラー。電話 03-1234-5678",
                     requester=requester)
    t2 = make_ticket(subject="在庫画面エラー", body="在庫一覧がシステムエラーになる")
    actor = Actor.for_user(po)
    problem = service.create_problem(db.session, actor, title="在庫一覧でE500", ticket_ids=[t1.id, t2.id])
    service.transition_problem(db.session, problem.id, "accepted", actor)
    return problem, actor


def test_signed_delivery_retried_after_500_and_never_duplicated(db, make_ticket, make_user, make_org, po,
                                                                tracker_config):
    from helpdesk.notify.models import DeliveryAttempt, Outbox

    problem, actor = _accepted_problem(db, make_ticket, po, make_user, make_org)
    answer = {"key": "DEV-42", "html_url": "https://tracker.example.jp/DEV-42"}
    with Receiver([(500, {"error": "boom"}), (201, answer)]) as receiver:
        tracker_config.update(TRACKER_WEBHOOK_URL=receiver.url, TRACKER_WEBHOOK_SECRET=SECRET)
        row = tracker.send_problem(db.session, problem.id, actor, url=receiver.url, secret=SECRET)
        # The in-process job ran after the commit: one attempt, answered 500.
        assert len(receiver.requests) == 1
        first = receiver.requests[0]
        assert tracker.verify(SECRET, first["body"], first["headers"][tracker.SIGNATURE_HEADER])
        assert not tracker.verify("wrong-secret", first["body"], first["headers"][tracker.SIGNATURE_HEADER])
        payload = json.loads(first["body"])
        assert set(payload) >= {"title", "body", "labels"} and "helpdesk" in payload["labels"]
        text = first["body"].decode()
        assert "03-1234-5678" not in text and "山田" not in text and "[氏名]" in text and "[電話番号]" in text
        db.session.expire_all()
        row = db.session.get(Outbox, row.id)
        assert row.state == "pending" and row.attempts == 1 and row.next_attempt_at > utcnow()
        assert jobs.deliver_due() == 0  # backoff not elapsed: nothing sent
        assert len(receiver.requests) == 1

        row.next_attempt_at = utcnow()
        db.session.commit()
        assert jobs.deliver_due() == 1
        assert len(receiver.requests) == 2
        second = receiver.requests[1]
        assert second["body"] == first["body"]
        assert second["headers"]["X-Helpdesk-Delivery"] == first["headers"]["X-Helpdesk-Delivery"] == str(row.id)

        # Success is final: neither the job nor the sweeper sends it again.
        assert notify_jobs.deliver(row.id) == "skipped"
        assert jobs.deliver_due() == 0
        assert len(receiver.requests) == 2

    db.session.expire_all()
    problem = service.get_problem(db.session, problem.id)
    assert problem.status == "sent"
    assert (problem.external_ref, problem.external_url) == ("DEV-42", "https://tracker.example.jp/DEV-42")
    attempts = db.session.query(DeliveryAttempt).filter_by(outbox_id=row.id).order_by(DeliveryAttempt.id).all()
    assert [(a.ok, a.status_code) for a in attempts] == [(False, 500), (True, 201)]


def test_gives_up_after_max_attempts(db, make_ticket, po, tracker_config):
    from helpdesk.notify.models import Outbox

    problem, actor = _accepted_problem(db, make_ticket, po)
    with Receiver([(503, {})]) as receiver:
        row = tracker.send_problem(db.session, problem.id, actor, url=receiver.url, secret=SECRET)
        row = db.session.get(Outbox, row.id)
        row.max_attempts = 2
        row.next_attempt_at = utcnow()
        db.session.commit()
        jobs.deliver_due()
        db.session.expire_all()
        assert db.session.get(Outbox, row.id).state == "failed"
        assert len(receiver.requests) == 2
        assert jobs.deliver_due() == 0


def test_not_configured_and_wrong_status_are_refused(db, make_ticket, po):
    problem, actor = _accepted_problem(db, make_ticket, po)
    with pytest.raises(tracker.TrackerNotConfigured):
        tracker.send_problem(db.session, problem.id, actor, url=None, secret=None)
    other = service.create_problem(db.session, actor, title="候補のまま")
    with pytest.raises(service.InvalidTransition):
        tracker.send_problem(db.session, other.id, actor, url="http://127.0.0.1:9/x", secret=SECRET)


@pytest.mark.parametrize("path", ["job", "sweep", "retry"])
def test_tracker_row_goes_only_to_the_tracker_sender(path, db, app, client, login, make_ticket, make_user, po,
                                                      tracker_config):
    """Whatever hands a tracker row to the dispatcher (its job, the sweeper, the retry button), the tracker
    sender posts it and the tracker's issue key lands on the problem. The generic webhook sender would
    refuse this loopback URL (not in WEBHOOK_ALLOWED_HOSTS) and would store no key."""
    from helpdesk.notify.models import DeliveryAttempt, Outbox

    assert not app.config.get("WEBHOOK_ALLOWED_HOSTS")
    problem, actor = _accepted_problem(db, make_ticket, po)
    answer = {"key": f"DEV-{path}", "html_url": f"https://tracker.example.jp/DEV-{path}"}
    with Receiver([(503, {}), (201, answer)]) as receiver:
        tracker_config.update(TRACKER_WEBHOOK_URL=receiver.url, TRACKER_WEBHOOK_SECRET=SECRET)
        row = tracker.send_problem(db.session, problem.id, actor, url=receiver.url, secret=SECRET)
        assert len(receiver.requests) == 1  # the job after the commit: answered 503, retried later
        db.session.expire_all()
        row = db.session.get(Outbox, row.id)
        assert row.state == "pending"
        if path == "job":
            row.next_attempt_at = utcnow()
            db.session.commit()
            assert notify_jobs.deliver(row.id) == "sent"
        elif path == "sweep":
            row.next_attempt_at = utcnow()
            db.session.commit()
            assert notify_service.requeue_due(db.session) == 1
        else:
            row.state = "failed"
            db.session.commit()
            login(make_user(roles="supervisor"))
            assert client.post(f"/notify/outbox/{row.id}/retry").status_code == 302
        assert len(receiver.requests) == 2
    for request in receiver.requests:
        assert request["headers"]["User-Agent"] == "vds-helpdesk/1"
        assert request["headers"]["X-Helpdesk-Event"] == "problem.sent"
        assert tracker.verify(SECRET, request["body"], request["headers"][tracker.SIGNATURE_HEADER])
    db.session.expire_all()
    row = db.session.get(Outbox, row.id)
    assert row.state == "sent" and row.response == answer
    problem = service.get_problem(db.session, problem.id)
    assert (problem.external_ref, problem.external_url) == (f"DEV-{path}", f"https://tracker.example.jp/DEV-{path}")
    attempts = db.session.query(DeliveryAttempt).filter_by(outbox_id=row.id).order_by(DeliveryAttempt.id).all()
    assert [(a.ok, a.status_code) for a in attempts] == [(False, 503), (True, 201)]


def test_route_table():
    assert notify_jobs.route("webhook", tracker.PURPOSE) == "tracker"
    assert notify_jobs.route("webhook", "webhook:ticket.created") == "webhook"
    assert notify_jobs.route("email", "ticket.ticket_received") == "email"
    assert set(notify_jobs.SENDERS) == {"email", "webhook", "tracker"}
