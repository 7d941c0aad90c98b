"""Issue 13.6: control characters are escaped wherever actor labels and free text reach the audit log or app logs."""
from __future__ import annotations

import logging

from sqlalchemy import select

from helpdesk import audit
from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.text import escape_controls

FORGED = "nobody@example.jp\r\n2026-01-01 09:00 login.succeeded admin@example.jp\x1b[2K\u2028\u202e"


def test_login_name_with_crlf_is_stored_escaped(client, db):
    response = client.post("/login", data={"email": FORGED, "password": "wrong-password"})
    assert response.status_code in (200, 400, 401)
    db.session.expire_all()
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "login.failed")).all()
    assert rows, "the failed login was not audited"
    labels = [r.actor_label for r in rows]
    assert not any(ch in label for label in labels for ch in "\r\n\x1b\u2028\u202e")
    assert any("nobody@example.jp\\r\\n2026-01-01" in label for label in labels), labels


def test_audit_free_text_and_details_are_escaped(db):
    row = audit.record(db.session, Actor(None, "api:token\nX", "10.0.0.1"), "ticket.updated", "ticket", "7\n8",
                       {"subject": "件名\r\nBcc: x", "changes": [{"to": "a\tb"}], "n": 3}, summary="要約\n偽の行")
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(AuditLog, row.id if hasattr(row, "id") else row)
    assert stored.actor_label == "api:token\\nX"
    assert stored.object_id == "7\\n8"
    assert stored.detail == {"subject": "件名\\r\\nBcc: x", "changes": [{"to": "a\\tb"}], "n": 3}
    assert stored.summary == "要約\\n偽の行"


def test_application_log_lines_cannot_be_forged(app, caplog):
    logger = logging.getLogger("helpdesk.accounts")
    with caplog.at_level(logging.INFO, logger="helpdesk.accounts"):
        logger.warning("login failed for %s", FORGED)
        logger.info(FORGED)
    messages = [r.getMessage() for r in caplog.records[-2:]]
    for message in messages:
        assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert messages[0] == "login failed for " + escape_controls(FORGED)
    assert len(caplog.text.strip().splitlines()) == 2  # one line per record


def test_plain_text_is_untouched():
    for text in ("山田\u3000太郎 様", "user@example.jp", "HD-000123", ""):
        assert escape_controls(text) == text
