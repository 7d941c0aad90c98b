"""The one vocabulary (helpdesk/vocabulary.py): constraints, API types, labels and transitions follow it."""
from __future__ import annotations

import typing

import pytest
from flask_babel import force_locale
from sqlalchemy.exc import IntegrityError

from helpdesk import vocabulary
from helpdesk.api import schemas
from helpdesk.tickets.models import Ticket, TransitionRefused
from helpdesk.vocabulary import Channel, OrgKind, Priority, Status, Tier


def test_api_types_are_the_vocabulary():
    assert typing.get_args(schemas.Status) == tuple(s.value for s in Status)
    assert typing.get_args(schemas.Priority) == tuple(p.value for p in Priority)
    assert typing.get_args(schemas.Channel) == tuple(c.value for c in Channel)
    assert typing.get_args(schemas.Tier) == tuple(t.value for t in Tier)
    assert typing.get_args(schemas.OrgKind) == tuple(k.value for k in OrgKind)


def test_check_constraints_follow_the_vocabulary():
    checks = {c.name: str(c.sqltext) for c in Ticket.__table__.constraints if hasattr(c, "sqltext")}
    for column, kind in (("status", Status), ("priority", Priority), ("channel", Channel), ("tier", Tier)):
        for member in kind:
            assert f"'{member.value}'" in checks[f"ck_tickets_{column}"]


def test_database_refuses_a_code_outside_the_vocabulary(db, make_ticket):
    ticket = make_ticket()
    ticket.channel = "fax"
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_every_code_has_a_label_in_both_languages(app):
    with app.test_request_context():
        for kind in (Status, Priority, Channel, Tier, OrgKind, vocabulary.UserRole):
            with force_locale("ja"):
                ja = vocabulary.labels(kind)
                assert set(ja) == set(vocabulary.values(kind))
                ja_text = {code: str(text) for code, text in ja.items()}
            with force_locale("en"):
                en_text = {code: str(text) for code, text in vocabulary.labels(kind).items()}
            for code in ja_text:
                assert en_text[code], code
                # Japanese labels are translated (codes such as "API"/"Web"/"P1" may read the same)
                if any(ord(ch) > 0x3000 for ch in ja_text[code]):
                    assert en_text[code] != ja_text[code], (kind, code)
                    assert not any(ord(ch) > 0x3000 for ch in en_text[code]), en_text[code]
        with force_locale("en"):
            assert vocabulary.label(Status, "closed") == "Closed"


@pytest.mark.parametrize("before,after,allowed", [
    ("new", "open", True), ("open", "resolved", True), ("resolved", "open", True), ("resolved", "closed", True),
    ("open", "closed", False), ("closed", "open", False), ("pending", "new", False),
])
def test_the_model_refuses_invalid_transitions(before, after, allowed):
    import datetime as dt

    ticket = Ticket(status=before)
    at = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone.utc)
    if allowed:
        assert ticket.move_to(after, at) == before
        assert ticket.status == after
        if after == "resolved":
            assert ticket.resolved_at == at
        if before == "resolved" and after == "open":
            assert ticket.resolved_at is None
    else:
        with pytest.raises(TransitionRefused):
            ticket.move_to(after, at)
        assert ticket.status == before
