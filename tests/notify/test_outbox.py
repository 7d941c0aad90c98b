"""Outbox delivery against a real SMTP peer on loopback: once, retried, nothing lost, never twice."""
from __future__ import annotations

import datetime as dt
import os

from sqlalchemy import select

from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.notify import jobs, service
from helpdesk.notify.models import DeliveryAttempt, Outbox
from helpdesk.tickets import service as tickets

from .conftest import Sink


def _rows(db, ticket_id, purpose=None):
    stmt = select(Outbox).where(Outbox.ticket_id == ticket_id).order_by(Outbox.id)
    if purpose:
        stmt = stmt.where(Outbox.purpose == purpose)
    db.session.expire_all()
    return db.session.scalars(stmt).all()


def _make_due(db, row_id):
    db.session.get(Outbox, row_id).next_attempt_at = utcnow() - dt.timedelta(seconds=1)
    db.session.commit()


def test_received_mail_delivered_once(db, make_ticket, smtp_sink):
    ticket = make_ticket(subject="ログインできません")
    [row] = _rows(db, ticket.id, "ticket.ticket_received")
    assert row.state == "sent" and row.attempts == 1 and row.sent_at is not None
    assert len(smtp_sink.messages) == 1
    msg = smtp_sink.messages[0]
    assert msg["Subject"] == f"[{ticket.ref}] お問い合わせを受け付けました: ログインできません"
    assert ticket.ref.lower() in msg["Message-ID"]
    assert msg["In-Reply-To"] == service.thread_root_id(ticket.id)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert ticket.ref in plain and f"/portal/tickets/{ticket.ref}" in plain
    assert "<p" in html and ticket.ref in html
    assert msg["From"].addresses[0].display_name == "VDSヘルプデスク"
    # Delivering the same row again sends nothing.
    assert jobs.deliver(row.id) == "skipped"
    assert len(smtp_sink.messages) == 1
    assert len(db.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id == row.id)).all()) == 1


def test_english_template_for_english_users(db, make_user, make_org, make_ticket, smtp_sink):
    org = make_org()
    user = make_user(org=org, locale="en")
    ticket = make_ticket(requester=user, org=org, subject="Cannot log in")
    msg = smtp_sink.messages[-1]
    assert msg["Subject"] == f"[{ticket.ref}] We received your request: Cannot log in"
    assert "reference number" in msg.get_body(("plain",)).get_content()


def test_mail_is_rendered_on_delivery_and_stored(db, make_ticket, smtp_sink):
    """The change's transaction writes the row with its template and JSON context, not the body; the
    delivery job renders the body, sends it and keeps it on the row."""
    ticket = make_ticket(subject="接種記録が保存できません")
    service.queue_ticket_mail(db.session, ticket, ticket.requester, "pending_reminder", dedupe_key="t:test",
                              action_path=f"/portal/tickets/{ticket.ref}")
    row = db.session.scalar(select(Outbox).where(Outbox.dedupe_key == "t:test"))
    assert row.state == "pending" and row.body_text is None and row.body_html is None  # before the commit
    spec = row.payload["render"]
    assert spec["template"] == "pending_reminder" and spec["lang"] == "ja" and spec["ref"] == ticket.ref
    assert spec["context"]["subject"] == "接種記録が保存できません"
    assert row.subject == f"[{ticket.ref}] ご返信のお願い: 接種記録が保存できません"
    db.session.commit()  # the delivery job runs after the commit
    [row] = _rows(db, ticket.id, "ticket.pending_reminder")
    assert row.state == "sent"
    [msg] = [m for m in smtp_sink.messages if m["Subject"] == row.subject]
    plain = msg.get_body(("plain",)).get_content()
    assert ticket.ref in plain and f"/portal/tickets/{ticket.ref}" in plain
    assert row.body_text.strip() == plain.strip()
    assert "<p" in row.body_html and ticket.ref in row.body_html


def test_mail_whose_template_cannot_render_fails_for_good(db, make_ticket, smtp_sink):
    ticket = make_ticket()
    row = service.queue_templated_mail(db.session, to="someone@example.jp", kind="ticket_received",
                                       template="no_such_template", lang="ja", ref=ticket.ref, context={},
                                       purpose="test.broken", ticket_id=ticket.id)
    db.session.commit()
    [row] = _rows(db, ticket.id, "test.broken")
    assert row.state == "failed" and row.attempts == 1  # retrying a missing template would never help
    assert "no_such_template" in row.last_error and row.body_text is None
    assert not [m for m in smtp_sink.messages if m["To"] == "someone@example.jp"]


def test_refused_connection_is_retried_and_delivered_when_server_returns(db, make_ticket, mail_port):
    ticket = make_ticket()
    [row] = _rows(db, ticket.id, "ticket.ticket_received")
    assert row.state == "pending" and row.attempts == 1
    assert "ConnectionRefused" in row.last_error
    assert row.next_attempt_at > utcnow()  # backoff: not before its time
    assert jobs.deliver(row.id) == "skipped"
    sink = Sink(mail_port).start()
    try:
        _make_due(db, row.id)
        assert service.requeue_due(db.session) >= 1
        [row] = _rows(db, ticket.id, "ticket.ticket_received")
        assert row.state == "sent" and row.attempts == 2
        assert len(sink.messages) == 1
        assert [a.ok for a in row.attempt_log] == [False, True]
        service.requeue_due(db.session)
        assert len(sink.messages) == 1
    finally:
        sink.stop()


def test_failed_after_max_attempts_then_retry_from_the_page(db, app, client, login, make_ticket, make_user,
                                                             mail_port):
    ticket = make_ticket()
    [row] = _rows(db, ticket.id, "ticket.ticket_received")
    row.max_attempts = 2
    db.session.commit()
    _make_due(db, row.id)
    assert jobs.deliver(row.id) == "failed"
    supervisor = make_user(roles="supervisor")
    login(supervisor)
    page = client.get("/notify/failed")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert ticket.ref in text and "ConnectionRefused" in text
    requester = make_user(org=None)
    client.post("/logout")
    login(requester)
    assert client.get("/notify/failed").status_code == 403
    assert client.post(f"/notify/outbox/{row.id}/retry").status_code == 403
    client.post("/logout")
    login(supervisor)
    sink = Sink(mail_port).start()
    try:
        response = client.post(f"/notify/outbox/{row.id}/retry")
        assert response.status_code == 302
        [row] = _rows(db, ticket.id, "ticket.ticket_received")
        assert row.state == "sent"
        assert len(sink.messages) == 1
    finally:
        sink.stop()


def test_worker_killed_mid_delivery_loses_nothing_and_sends_once(db, make_ticket, mail_port):
    ticket = make_ticket()
    [row] = _rows(db, ticket.id, "ticket.ticket_received")
    _make_due(db, row.id)
    # A worker claims the row and dies before sending: the row stays claimed under a lease.
    claimed = jobs.claim(db.session, row.id, utcnow())
    assert claimed is not None and claimed.state == "sending"
    sink = Sink(mail_port).start()
    try:
        assert jobs.deliver(row.id) == "skipped"  # lease still held: nobody else sends it
        assert service.requeue_due(db.session) == 0
        db.session.get(Outbox, row.id).lease_until = utcnow() - dt.timedelta(seconds=1)
        db.session.commit()
        assert service.requeue_due(db.session) == 1  # lease expired: the sweeper hands it on
        [row] = _rows(db, ticket.id, "ticket.ticket_received")
        assert row.state == "sent"
        assert len(sink.messages) == 1
        # Once recorded as sent it is never sent again, whatever re-enqueues it.
        assert jobs.deliver(row.id) == "skipped"
        assert service.requeue_due(db.session) == 0
        assert len(sink.messages) == 1
    finally:
        sink.stop()


def test_notifications_for_replies_notes_assignment_and_resolution(db, make_ticket, make_user, agent, smtp_sink):
    ticket = make_ticket()
    requester = ticket.requester
    staff = Actor(agent.id, agent.email)
    tickets.assign(db.session, ticket.id, agent.id, Actor.system("test"))
    tickets.add_comment(db.session, ticket.id, "内部メモ: 確認中", staff, public=False)
    tickets.add_comment(db.session, ticket.id, "パスワードを再設定してください。", staff)
    tickets.add_comment(db.session, ticket.id, "再設定できました。", Actor(requester.id, requester.email))
    tickets.change_status(db.session, ticket.id, "resolved", staff)
    by_purpose = {}
    for row in _rows(db, ticket.id):
        by_purpose.setdefault(row.purpose, []).append(row)
    assert [r.recipient for r in by_purpose["ticket.assigned"]] == [agent.email]
    assert [r.recipient for r in by_purpose["ticket.public_reply"]] == [requester.email]
    assert "パスワードを再設定してください。" in by_purpose["ticket.public_reply"][0].body_text
    assert [r.recipient for r in by_purpose["ticket.requester_replied"]] == [agent.email]
    assert [r.recipient for r in by_purpose["ticket.resolved"]] == [requester.email]
    assert f"/portal/tickets/{ticket.ref}#csat" in by_purpose["ticket.resolved"][0].body_text
    # The internal note produced no mail at all, and never one to the requester.
    assert not any("内部メモ" in (r.body_text or "") for r in _rows(db, ticket.id))
    to_requester = [r.purpose for r in _rows(db, ticket.id) if r.recipient == requester.email]
    assert sorted(to_requester) == ["ticket.public_reply", "ticket.resolved", "ticket.ticket_received"]
    assert all(r.state == "sent" for r in _rows(db, ticket.id))
    # The reply's Message-ID is kept on the comment so the requester's answer threads.
    reply_row = by_purpose["ticket.public_reply"][0]
    from helpdesk.tickets.models import Comment
    comment = db.session.scalar(select(Comment).where(Comment.message_id == reply_row.headers["Message-ID"]))
    assert comment is not None and comment.ticket_id == ticket.id


def test_pending_reminder_once_per_pause(db, make_ticket, agent):
    ticket = make_ticket()
    tickets.change_status(db.session, ticket.id, "pending", Actor(agent.id, agent.email))
    assert service.queue_pending_reminders(db.session) == 0  # not yet
    later = utcnow() + dt.timedelta(hours=service.PENDING_REMINDER_HOURS + 1)
    assert service.queue_pending_reminders(db.session, now=later) == 1
    assert service.queue_pending_reminders(db.session, now=later) == 0
    [row] = _rows(db, ticket.id, "ticket.pending_reminder")
    assert row.recipient == ticket.requester.email


def test_redis_down_at_creation_mail_kept_and_delivered_by_the_sweeper(db, app, make_ticket, smtp_sink):
    real_redis = os.environ.get("HELPDESK_TEST_REDIS_URL")
    saved = app.config["REDIS_URL"], app.config["RQ_ASYNC"]
    app.config["REDIS_URL"], app.config["RQ_ASYNC"] = "redis://127.0.0.1:1/0", True  # nothing listens there
    try:
        ticket = make_ticket(subject="Redis停止中の問い合わせ")
    finally:
        app.config["REDIS_URL"], app.config["RQ_ASYNC"] = saved
    assert ticket.id is not None  # the ticket is saved whatever Redis does
    [row] = _rows(db, ticket.id, "ticket.ticket_received")
    assert row.state == "pending" and row.attempts == 0
    assert smtp_sink.messages == []
    if real_redis:
        from redis import Redis
        from rq import Queue, SimpleWorker

        app.config["REDIS_URL"], app.config["RQ_ASYNC"] = real_redis, True
        try:
            connection = Redis.from_url(real_redis)
            queue = Queue("notify", connection=connection)
            queue.empty()
            assert service.requeue_due(db.session) >= 1
            SimpleWorker([queue], connection=connection).work(burst=True)
        finally:
            app.config["REDIS_URL"], app.config["RQ_ASYNC"] = saved
    else:
        assert service.requeue_due(db.session) >= 1  # in-process jobs
    [row] = _rows(db, ticket.id, "ticket.ticket_received")
    assert row.state == "sent"
    assert [m["Subject"] for m in smtp_sink.messages].count(
        f"[{ticket.ref}] お問い合わせを受け付けました: Redis停止中の問い合わせ") == 1


def test_backoff_grows_with_jitter():
    import random

    rng = random.Random(1)
    first, third = jobs.backoff(1, rng), jobs.backoff(3, rng)
    assert dt.timedelta(seconds=24) <= first <= dt.timedelta(seconds=36)
    assert dt.timedelta(seconds=96) <= third <= dt.timedelta(seconds=144)
    assert jobs.backoff(40, rng) <= dt.timedelta(seconds=jobs.BACKOFF_CAP_SECONDS * 1.2)
