"""Issue 14.6c: an automation rule's note is the ticket service's internal note, written as the system."""
from __future__ import annotations

import pytest

from helpdesk.audit import Actor
from helpdesk.tickets import service
from helpdesk.tickets.models import TicketEvent

SYSTEM = Actor(None, "automation:テスト規則")


def test_a_system_note_has_no_author_and_leaves_the_status_alone(db, make_ticket, agent):
    ticket = make_ticket()
    service.change_status(db.session, ticket.id, "pending", Actor(agent.id, agent.email))
    note = service.add_comment(db.session, ticket.id, "自動で付けたメモ", SYSTEM, public=False, via="automation",
                               system=True)
    assert note.author_id is None and not note.is_public and note.via == "automation"
    assert ticket.status == "pending"  # a requester's reply would have reopened it; a rule's note does not
    event = db.session.query(TicketEvent).filter_by(ticket_id=ticket.id, kind="note").one()
    assert event.actor_label == "automation:テスト規則" and event.detail == {"comment_id": note.id}
    assert "自動で付けたメモ" in ticket.search_text


def test_a_system_note_is_allowed_on_a_closed_ticket_but_never_public(db, make_ticket, agent):
    ticket = make_ticket()
    for status in ("resolved", "closed"):
        service.change_status(db.session, ticket.id, status, Actor(agent.id, agent.email))
    with pytest.raises(service.TicketError):  # a person's note on a closed ticket is refused
        service.add_comment(db.session, ticket.id, "メモ", Actor(agent.id, agent.email), public=False)
    db.session.rollback()
    note = service.add_comment(db.session, ticket.id, "クローズ後の自動メモ", SYSTEM, public=False, via="automation",
                               system=True)
    assert note.id is not None and ticket.status == "closed"
    with pytest.raises(ValueError):
        service.add_comment(db.session, ticket.id, "公開", SYSTEM, public=True, system=True)
