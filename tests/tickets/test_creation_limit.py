"""Per-account ticket creation limits (issue 13.4): portal, API tokens, mail-in per sender, staff intake.

Counts go to the test Redis (HELPDESK_TEST_REDIS_URL) when set, else to this process's memory. Windows are
tiny or wide enough for the test never to depend on how long a request takes; the reset test waits out the
Retry-After the server answered (at most 2 s) instead of asserting on durations.
"""
from __future__ import annotations

import json
import smtplib
import time
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr

import flask_babel
import pytest
from sqlalchemy import func, select

from helpdesk.accounts.models import AuditLog, User
from helpdesk.audit import Actor
from helpdesk.notify.mailin import ingest_raw_mail, make_controller
from helpdesk.notify.models import Outbox
from helpdesk.tickets.models import Ticket
from helpdesk.tickets.portal_forms import new_nonce
from tests.conftest import TEST_REDIS

SMTP_PORT = 6141


def _clear_counters():
    from helpdesk.api import ratelimit

    with ratelimit._memory_lock:
        ratelimit._memory.clear()
    if TEST_REDIS:
        import redis

        conn = redis.Redis.from_url(TEST_REDIS)
        for key in conn.scan_iter("helpdesk:ticket-create:*"):
            conn.delete(key)
        conn.close()


def _not_near_boundary(window: int, margin: float) -> None:
    """Start a test well inside a fixed window, so its few requests all fall into one."""
    left = window - time.time() % window
    if left < margin:
        time.sleep(left + 0.05)


@pytest.fixture
def limits(app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", True)
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", TEST_REDIS or "memory://")
    _clear_counters()

    def set_limits(**values):
        for key, value in values.items():
            monkeypatch.setitem(app.config, f"TICKET_CREATE_LIMIT_{key.upper()}", value)

    yield set_limits
    _clear_counters()


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _limited_rows(db):
    return db.session.scalars(select(AuditLog).where(AuditLog.action == "ticket.create_limited")).all()


def _portal_post(client, subject):
    return client.post("/portal/new", data={"subject": subject, "description": f"{subject}の詳細です。",
                                            "category": "", "nonce": new_nonce()})


def _token(db, user, name):
    from helpdesk.api import service

    return service.create_token(db.session, name=name, user_email=user.email, scopes=["read", "tickets:write"],
                                actor=Actor.system("test")).plaintext


def _api_post(client, token, subject, **extra):
    return client.post("/api/v1/tickets", data=json.dumps({"subject": subject, "body": "本文", **extra}),
                       content_type="application/json", headers={"Authorization": f"Bearer {token}"})


# --- portal ---------------------------------------------------------------------------------------

def test_portal_refuses_over_the_limit_keeps_the_text_and_writes_nothing(db, client, login, make_org, make_user,
                                                                          limits):
    limits(requester="3 per 10 minutes")
    _not_near_boundary(600, 30)
    user = make_user(org=make_org())
    login(user)
    for n in range(3):
        assert _portal_post(client, f"ログインできない {n}").status_code == 302
    tickets_before, outbox_before = _count(db, Ticket), _count(db, Outbox)
    refused = _portal_post(client, "四件目の問い合わせ")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    page = refused.get_data(as_text=True)
    assert 'value="四件目の問い合わせ"' in page and "四件目の問い合わせの詳細です。" in page
    assert 'id="limit-error" role="alert"' in page and "受け付けを一時的に止めています" in page
    again = _portal_post(client, "五件目")
    assert again.status_code == 429
    assert (_count(db, Ticket), _count(db, Outbox)) == (tickets_before, outbox_before)
    rows = _limited_rows(db)
    assert len(rows) == 1  # once per window, not once per refusal
    assert rows[0].actor_id == user.id and rows[0].detail["channel"] == "web"
    assert rows[0].detail["bucket"] == "requester" and rows[0].detail["limit"] == 3


def test_portal_message_in_english(db, client, login, make_org, make_user, limits):
    limits(requester="1 per 10 minutes")
    _not_near_boundary(600, 30)
    user = make_user(org=make_org())
    login(user)
    client.post("/lang", data={"lang": "en"})
    assert _portal_post(client, "one").status_code == 302
    flask_babel.refresh()  # the test's app context outlives requests: drop the locale cached in it
    refused = _portal_post(client, "two")
    assert refused.status_code == 429
    assert "Too many requests were sent in a short time" in refused.get_data(as_text=True)


def test_limit_resets_after_the_window(db, client, login, make_org, make_user, limits):
    limits(requester="2 per 2 seconds")
    user = make_user(org=make_org())
    login(user)
    refused = None
    for n in range(12):  # however slow the requests are, 3 land in one 2 s window before long
        response = _portal_post(client, f"件名 {n}")
        if response.status_code == 429:
            refused = response
            break
        assert response.status_code == 302
    assert refused is not None
    time.sleep(int(refused.headers["Retry-After"]))  # the server's own word for when the window ends
    assert _portal_post(client, "次の窓").status_code == 302


# --- API ------------------------------------------------------------------------------------------

def test_api_requester_token_gets_429_problem(db, client, make_org, make_user, limits):
    limits(requester="2 per 10 minutes")
    _not_near_boundary(600, 30)
    user = make_user(org=make_org())
    token = _token(db, user, "requester-script")
    assert [_api_post(client, token, f"API {n}").status_code for n in range(2)] == [201, 201]
    before = (_count(db, Ticket), _count(db, Outbox))
    response = _api_post(client, token, "API 3", )
    assert response.status_code == 429 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("too-many-tickets") and body["status"] == 429
    assert "上限" in body["detail"] and "Too many tickets" in body["detail"]
    assert 1 <= int(response.headers["Retry-After"]) <= 600
    assert (_count(db, Ticket), _count(db, Outbox)) == before
    assert _api_post(client, token, "API 4").status_code == 429
    if TEST_REDIS:  # counted in the shared store every gunicorn worker sees
        import redis

        conn = redis.Redis.from_url(TEST_REDIS)
        keys = list(conn.scan_iter("helpdesk:ticket-create:requester:*"))
        assert keys and int(conn.get(keys[0])) == 4 and 0 < conn.ttl(keys[0]) <= 605
        conn.close()
    rows = _limited_rows(db)
    assert len(rows) == 1 and rows[0].detail["channel"] == "api"


def test_portal_and_api_share_one_account_bucket(db, client, login, make_org, make_user, limits):
    limits(requester="2 per 10 minutes")
    _not_near_boundary(600, 30)
    user = make_user(org=make_org())
    token = _token(db, user, "same-account")
    login(user)
    assert _portal_post(client, "ポータルから").status_code == 302
    assert _api_post(client, token, "APIから").status_code == 201
    assert _portal_post(client, "三件目").status_code == 429
    # Another requester is not affected.
    other = make_user(org=make_org())
    assert _api_post(client, _token(db, other, "other"), "別の人").status_code == 201


def test_staff_token_has_its_own_higher_limit(db, client, make_org, make_user, limits):
    limits(requester="1 per 10 minutes", staff="3 per 10 minutes")
    _not_near_boundary(600, 30)
    staff = make_user(roles="agent")
    requester = make_user(org=make_org())
    token = _token(db, staff, "integration")
    statuses = [_api_post(client, token, f"連携 {n}", requester_email=requester.email).status_code
                for n in range(4)]
    assert statuses == [201, 201, 201, 429]
    assert _limited_rows(db)[0].detail["bucket"] == "staff"


# --- staff phone intake -----------------------------------------------------------------------------

def _intake_post(client, caller, subject):
    return client.post("/agent/intake", data={"nonce": new_nonce(), "caller_id": str(caller.id), "subject": subject,
                                              "description": "電話の内容", "priority": "P3",
                                              "call_started_at": str(int(time.time() * 1000))})


def test_staff_intake_is_not_limited_by_the_requester_limit(db, client, login, make_org, make_user, agent, limits):
    limits(requester="1 per 10 minutes", staff="4 per 10 minutes")
    _not_near_boundary(600, 30)
    caller = make_user(org=make_org())
    login(agent)
    assert [_intake_post(client, caller, f"電話 {n}").status_code for n in range(4)] == [302] * 4
    before = _count(db, Ticket)
    refused = _intake_post(client, caller, "五本目の電話")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    page = refused.get_data(as_text=True)
    assert 'value="五本目の電話"' in page and 'id="limit-error"' in page
    assert _count(db, Ticket) == before


# --- mail-in --------------------------------------------------------------------------------------

def _mail(subject, sender="sato@clinic.example.jp", msgid=None, **headers):
    msg = MIMEText(f"{subject}について教えてください。", "plain", "utf-8")
    msg["Subject"] = Header(subject, "utf-8").encode()
    msg["From"] = formataddr(("佐藤 一郎", sender))
    msg["To"] = "helpdesk@example.jp"
    msg["Message-ID"] = msgid or f"<{abs(hash((subject, sender, time.time())))}@mail.example.jp>"
    for name, value in headers.items():
        msg[name] = value
    return msg.as_bytes()


def test_mail_sender_limit_defers_new_tickets_but_not_replies(db, limits):
    limits(mail_sender="2 per 10 minutes", requester="1 per 10 minutes")
    _not_near_boundary(600, 30)
    first = ingest_raw_mail(db.session, _mail("一通目"))
    assert first.action == "created"  # the requester limit does not apply to mail: its own bucket
    assert ingest_raw_mail(db.session, _mail("二通目")).action == "created"
    counts = (_count(db, Ticket), _count(db, Outbox), _count(db, User))
    third = ingest_raw_mail(db.session, _mail("三通目", sender="Sato@Clinic.Example.JP"))
    assert third.action == "deferred" and third.reason == "rate_limited" and third.retry_after >= 1
    assert ingest_raw_mail(db.session, _mail("四通目")).action == "deferred"
    assert (_count(db, Ticket), _count(db, Outbox), _count(db, User)) == counts
    rows = _limited_rows(db)
    assert len(rows) == 1 and rows[0].detail["channel"] == "email" and rows[0].actor_id is None
    # A reply on the sender's own open ticket still arrives; another sender still opens tickets.
    reply = ingest_raw_mail(db.session, _mail(f"Re: [{first.ref}] 一通目"))
    assert reply.action == "appended" and reply.ticket_id == first.ticket_id
    assert ingest_raw_mail(db.session, _mail("別の人", sender="suzuki@clinic.example.jp")).action == "created"


def test_smtp_answers_451_over_the_sender_limit(app, db, limits):
    limits(mail_sender="1 per 10 minutes")
    _not_near_boundary(600, 30)
    controller = make_controller(app, port=SMTP_PORT)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30) as smtp:
            smtp.sendmail("yamada@clinic.example.jp", ["helpdesk@example.jp"],
                          _mail("最初の問い合わせ", sender="yamada@clinic.example.jp"))
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("yamada@clinic.example.jp", ["helpdesk@example.jp"],
                              _mail("二通目の問い合わせ", sender="yamada@clinic.example.jp"))
    finally:
        controller.stop()
    assert refused.value.smtp_code == 451 and b"4.7.1" in refused.value.smtp_error
    subjects = db.session.scalars(select(Ticket.subject).where(Ticket.channel == "email")).all()
    assert "最初の問い合わせ" in subjects and "二通目の問い合わせ" not in subjects


# --- configuration -----------------------------------------------------------------------------------

def test_malformed_limit_stops_start_up(monkeypatch, tmp_path):
    from helpdesk import create_app
    from tests.conftest import base_config

    monkeypatch.setenv("TICKET_CREATE_LIMIT_REQUESTER", "ten a minute")
    with pytest.raises(RuntimeError, match="TICKET_CREATE_LIMIT_REQUESTER='ten a minute' is not a limit"):
        create_app(base_config(UPLOAD_FOLDER=str(tmp_path)))
    monkeypatch.delenv("TICKET_CREATE_LIMIT_REQUESTER")
    with pytest.raises(RuntimeError, match="TICKET_CREATE_LIMIT_STAFF='0 per minute'"):
        create_app(base_config(UPLOAD_FOLDER=str(tmp_path), TICKET_CREATE_LIMIT_STAFF="0 per minute"))


def test_redis_down_fails_open(app, db, client, login, make_org, make_user, limits, monkeypatch, caplog):
    limits(requester="1 per 10 minutes")
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6199/13")  # nothing listens
    user = make_user(org=make_org())
    login(user)
    with caplog.at_level("WARNING", logger="helpdesk.api.ratelimit"):
        assert [_portal_post(client, f"障害中 {n}").status_code for n in range(2)] == [302, 302]
    lines = [r for r in caplog.records if "ticket creation limit not counted" in r.getMessage()]
    assert len(lines) == 2  # one line per uncounted creation
