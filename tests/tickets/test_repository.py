"""Rows written outside the unit of work (tickets.repository / common.insert_now) follow the transaction."""
from __future__ import annotations

from sqlalchemy import func, select

from helpdesk.audit import Actor
from helpdesk.tickets import service
from helpdesk.tickets.models import Ticket, TicketTag


def test_a_rolled_back_new_ticket_leaves_the_session(db, make_org, make_user):
    org = make_org()
    requester = make_user(org=org)
    actor = Actor(requester.id, requester.email)
    before = db.session.scalar(select(func.count(Ticket.id)))
    ticket = service.create_ticket(db.session, actor=actor, subject="取り消される", body="本文", channel="web",
                                   requester_id=requester.id, organisation_id=org.id, tags=["急ぎ"], commit=False)
    tag = ticket.tags[0]
    db.session.rollback()
    assert ticket not in db.session and tag not in db.session
    assert db.session.scalar(select(func.count(Ticket.id))) == before
    assert db.session.scalar(select(func.count()).select_from(TicketTag)) == 0
    # The same session goes on: a retry may get the same primary key back (SQLite reuses it) without
    # "another instance with key … is already present".
    again = service.create_ticket(db.session, actor=actor, subject="もう一度", body="本文", channel="web",
                                  requester_id=requester.id, organisation_id=org.id, tags=["急ぎ"])
    assert db.session.get(Ticket, again.id).subject == "もう一度"
    assert [t.tag for t in again.tags] == ["急ぎ"]


def test_a_committed_new_ticket_stays_in_the_session(db, make_ticket):
    ticket = make_ticket(tags=["確認"])
    db.session.rollback()  # nothing pending: the committed ticket is not let go
    assert ticket in db.session
    assert db.session.get(Ticket, ticket.id) is ticket
