"""Issue 13.8: CR/LF in a subject neither injects a mail header nor stops the requester's mail.

Real SMTP peer (aiosmtpd): what arrives is what a mail server would see.
"""
from __future__ import annotations

import secrets

from sqlalchemy import select

from helpdesk.audit import Actor
from helpdesk.notify import jobs
from helpdesk.notify.models import Outbox
from helpdesk.tickets.models import Ticket

INJECTED = "ログインできません\r\nBcc: victim@evil.tld\r\nX-Evil: 1\u2028\x00"
CLEAN = "ログインできません Bcc: victim@evil.tld X-Evil: 1"


def _received_by(sink, email):
    return [m for m, env in zip(sink.messages, sink.envelopes) if email in env.rcpt_tos]


def _assert_clean_delivery(sink, ticket, requester_email):
    assert ticket.subject == CLEAN
    mails = _received_by(sink, requester_email)
    assert mails, "the requester got no mail"
    for msg, env in zip(sink.messages, sink.envelopes):
        assert "victim@evil.tld" not in env.rcpt_tos
        assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert any(CLEAN in str(m["Subject"]) for m in mails)


def test_api_subject_with_crlf(app, client, db, make_user, make_org, smtp_sink):
    from helpdesk.api import service as api_service

    org = make_org()
    requester = make_user(org=org)
    token = api_service.create_token(db.session, name=f"crlf-{secrets.token_hex(3)}", user_email=requester.email,
                                     scopes=["read", "tickets:write"], actor=Actor.system("test")).plaintext
    # (NUL is refused with 400 by the API; CR/LF and line separators are cleaned)
    response = client.post("/api/v1/tickets", json={"subject": INJECTED.replace("\x00", ""), "body": "本文"},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["subject"] == CLEAN
    ticket = db.session.scalar(select(Ticket).where(Ticket.subject == CLEAN))
    _assert_clean_delivery(smtp_sink, ticket, requester.email)


def test_portal_subject_with_crlf(db, make_user, make_org, smtp_sink):
    from helpdesk.tickets.portal import submit_ticket

    org = make_org()
    requester = make_user(org=org)
    ref = submit_ticket(db.session, requester, Actor(requester.id, requester.email), subject=INJECTED,
                        description="本文", category=None, files=[], nonce=secrets.token_hex(8))
    ticket = db.session.scalar(select(Ticket).where(Ticket.subject == CLEAN))
    assert ticket.ref == ref
    _assert_clean_delivery(smtp_sink, ticket, requester.email)


def test_phone_intake_subject_with_crlf(db, make_user, make_org, agent, smtp_sink):
    from helpdesk.tickets.intake import log_call

    org = make_org()
    caller = make_user(org=org)
    ticket = log_call(db.session, Actor(agent.id, agent.email), subject=INJECTED, description="電話",
                      caller_id=caller.id)
    assert ticket.subject == CLEAN


def test_mail_in_subject_with_encoded_crlf(db, smtp_sink):
    from email.header import Header
    from email.mime.text import MIMEText

    from helpdesk.notify.mailin import ingest_raw_mail

    msg = MIMEText("本文です", "plain", "utf-8")
    msg["Subject"] = Header(INJECTED.replace("\x00", ""), "utf-8").encode()  # CR/LF inside an encoded-word
    msg["From"] = "kato@clinic.example.jp"
    msg["To"] = "helpdesk@example.jp"
    msg["Message-ID"] = f"<{secrets.token_hex(6)}@clinic.example.jp>"
    ingest_raw_mail(db.session, msg.as_bytes())
    ticket = db.session.scalar(select(Ticket).where(Ticket.subject == CLEAN))
    assert ticket is not None
    _assert_clean_delivery(smtp_sink, ticket, "kato@clinic.example.jp")


def test_a_row_stored_with_crlf_before_the_fix_is_still_delivered(db, make_ticket, smtp_sink):
    """Rows written by older code (or any other path) are sent with safe headers, not failed for good."""
    ticket = make_ticket(subject="接種記録")
    row = Outbox(kind="email", recipient="sato@clinic.example.jp", subject="[HD] 件名\r\nBcc: victim@evil.tld",
                 body_text="本文", purpose="test.legacy", ticket_id=ticket.id,
                 headers={"Reply-To": "a@example.jp\r\nBcc: victim@evil.tld"})
    db.session.add(row)
    db.session.commit()
    assert jobs.deliver(row.id) == "sent"
    [msg] = _received_by(smtp_sink, "sato@clinic.example.jp")
    assert msg["Bcc"] is None and "\n" not in str(msg["Subject"])
    assert all("victim@evil.tld" not in env.rcpt_tos for env in smtp_sink.envelopes)
