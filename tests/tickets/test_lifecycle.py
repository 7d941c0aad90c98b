"""Ticket lifecycle, events, scoping and merge in the service layer."""
import pytest
from sqlalchemy import select

from helpdesk.audit import Actor
from helpdesk.tickets import service
from helpdesk.tickets.models import Comment, Ticket, TicketEvent


def test_reference_and_created_event(db, make_ticket):
    ticket = make_ticket()
    assert ticket.ref == f"HD-{ticket.id:06d}"
    kinds = db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)).all()
    assert kinds == ["created"]
    assert ticket.role == "clinic"


def test_new_ticket_is_a_loaded_session_object_and_later_changes_are_versioned_updates(db, make_org, make_user,
                                                                                      agent):
    """create_ticket inserts the ticket (and its tags) with one statement each and puts the object in
    the session as if loaded: tags, requester and organisation come without a query, a change in the same
    transaction is an UPDATE that bumps the version, and a rollback leaves nothing behind."""
    from sqlalchemy import event, inspect

    org = make_org()
    user = make_user(org=org)
    ticket = service.create_ticket(db.session, actor=Actor.for_user(user), subject="在庫が表示されない",
                                   requester_id=user.id, tags=["在庫", "画面", "在庫"], commit=False)
    state = inspect(ticket)
    assert state.persistent and not state.modified and ticket in db.session
    assert ticket.version == 1 and ticket.status == "new" and ticket.search_text
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert sorted(t.tag for t in ticket.tags) == ["在庫", "画面"]
        assert ticket.requester.id == user.id and ticket.organisation.id == org.id
        assert statements == []  # all of it already in the session
        service.assign(db.session, ticket.id, agent.id, Actor.system("test"), commit=False)
        assert any(s.lstrip().upper().startswith("UPDATE TICKETS") for s in statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert ticket.version == 2 and ticket.assignee_id == agent.id
    ticket_id = ticket.id
    db.session.rollback()
    assert db.session.get(Ticket, ticket_id) is None
    assert db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)).all() == []


def test_allowed_and_refused_transitions(db, make_ticket, agent):
    ticket = make_ticket()
    actor = Actor.for_user(agent)
    service.change_status(db.session, ticket.id, "open", actor)
    service.change_status(db.session, ticket.id, "pending", actor)
    service.change_status(db.session, ticket.id, "resolved", actor)
    with pytest.raises(service.InvalidTransition):
        service.change_status(db.session, ticket.id, "pending", actor)
    service.change_status(db.session, ticket.id, "closed", actor)
    with pytest.raises(service.InvalidTransition):
        service.change_status(db.session, ticket.id, "open", actor)
    assert db.session.get(Ticket, ticket.id).status == "closed"


def test_escalation_requires_reason_and_goes_up(db, make_ticket, agent):
    ticket = make_ticket()
    actor = Actor.for_user(agent)
    with pytest.raises(service.TicketError):
        service.escalate(db.session, ticket.id, "L2", "  ", actor)
    service.escalate(db.session, ticket.id, "L2", "設定の確認が必要", actor)
    assert ticket.tier == "L2" and ticket.status == "escalated"
    with pytest.raises(service.TicketError):
        service.escalate(db.session, ticket.id, "L1", "戻す", actor)


def test_optimistic_lock_conflict(db, make_ticket, agent):
    ticket = make_ticket()
    actor = Actor.for_user(agent)
    version = ticket.version
    service.update_fields(db.session, ticket.id, actor, expected_version=version, priority="P2")
    with pytest.raises(service.VersionConflict):
        service.update_fields(db.session, ticket.id, actor, expected_version=version, priority="P1")
    assert db.session.get(Ticket, ticket.id).priority == "P2"


def test_scoping_org_and_municipality_children(db, make_org, make_user, make_ticket):
    city = make_org(kind="municipality")
    clinic_a = make_org(kind="clinic", parent=city)
    clinic_b = make_org(kind="clinic")
    user_a, user_b, city_user = make_user(org=clinic_a), make_user(org=clinic_b), make_user(org=city)
    ticket_a = make_ticket(requester=user_a)
    ticket_b = make_ticket(requester=user_b)
    assert service.can_see(user_a, ticket_a) and not service.can_see(user_a, ticket_b)
    assert service.can_see(city_user, ticket_a) and not service.can_see(city_user, ticket_b)
    with pytest.raises(service.NotFound):
        service.get_visible(db.session, user_b, ticket_a.ref)
    visible = db.session.scalars(service.visible_tickets(user_a)).all()
    assert [t.id for t in visible] == [ticket_a.id]


def test_requester_reply_reopens_and_internal_note_rules(db, make_ticket, agent):
    ticket = make_ticket()
    requester_actor = Actor(ticket.requester_id, "requester")
    staff = Actor.for_user(agent)
    service.add_comment(db.session, ticket.id, "確認します", staff, public=True)
    assert ticket.first_response_at is not None and ticket.status == "open"
    with pytest.raises(service.TicketError):
        service.add_comment(db.session, ticket.id, "メモ", requester_actor, public=False)
    service.add_comment(db.session, ticket.id, "社内メモ", staff, public=False)
    service.change_status(db.session, ticket.id, "resolved", staff)
    service.add_comment(db.session, ticket.id, "まだできません", requester_actor)
    assert ticket.status == "open"
    public = [c for kind, _, c in service.timeline(db.session, ticket, include_internal=False) if kind == "comment"]
    assert all(c.is_public for c in public) and len(public) == 2


def test_merge_keeps_history(db, make_ticket, agent):
    a, b = make_ticket(subject="A"), make_ticket(subject="B")
    actor = Actor.for_user(agent)
    service.add_comment(db.session, a.id, "Aへの返信", actor)
    service.merge_tickets(db.session, a.id, b.id, actor)
    assert a.status == "closed" and a.merged_into_id == b.id
    assert db.session.scalars(select(Comment).where(Comment.ticket_id == a.id)).all()
    kinds = db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == b.id)).all()
    assert "merged_in" in kinds


def test_duplicate_nonce_creates_one_ticket(db, make_org, make_user):
    user = make_user(org=make_org())
    actor = Actor.for_user(user)
    first = service.create_ticket(db.session, actor=actor, subject="件名", body="本文", requester_id=user.id,
                                  nonce="abc123")
    with pytest.raises(service.DuplicateSubmission) as info:
        service.create_ticket(db.session, actor=actor, subject="件名", body="本文", requester_id=user.id,
                              nonce="abc123")
    assert info.value.ticket_id == first.id
    assert db.session.scalar(select(Ticket.id).where(Ticket.subject == "件名")) == first.id


def test_search_text_is_normalised(db, make_ticket):
    ticket = make_ticket(subject="ＶＤＳにﾛｸﾞｲﾝできない", body="Password")
    assert "vdsにログインできない" in ticket.search_text and "password" in ticket.search_text
