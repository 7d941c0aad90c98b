"""More lifecycle rules: one ticket per form nonce, search text follows replies, reply conflicts, bulk refusals."""
import pytest
from sqlalchemy import func, select

from helpdesk.audit import Actor
from helpdesk.tickets import service
from helpdesk.tickets.models import FormNonce, Ticket, TicketEvent


def test_same_form_nonce_creates_one_ticket(db, make_org, make_user):
    user = make_user(org=make_org())
    actor = Actor(user.id, user.email)
    first = service.create_ticket(db.session, actor=actor, subject="二重送信", requester_id=user.id, nonce="n-1")
    with pytest.raises(service.DuplicateSubmission) as err:
        service.create_ticket(db.session, actor=actor, subject="二重送信", requester_id=user.id, nonce="n-1")
    assert err.value.ticket_id == first.id
    assert db.session.scalar(select(func.count(Ticket.id))) == 1
    assert db.session.get(FormNonce, "n-1").ticket_id == first.id
    assert db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == first.id)).all() == ["created"]


def test_search_text_is_normalised_and_follows_replies(db, make_ticket, agent):
    ticket = make_ticket(subject="ＥＤＧＥで　ﾛｸﾞｲﾝ", body="Error")
    assert ticket.search_text == "edgeで ログイン error"  # NFKC, lower case, one space
    service.add_comment(db.session, ticket.id, "証明書を再発行しました", Actor.for_user(agent), public=False)
    assert "証明書を再発行しました" in db.session.get(Ticket, ticket.id).search_text


def test_reply_with_stale_version_is_refused(db, make_ticket, agent):
    ticket = make_ticket()
    stale = ticket.version
    service.update_fields(db.session, ticket.id, Actor.for_user(agent), priority="P1")
    with pytest.raises(service.VersionConflict):
        service.add_comment(db.session, ticket.id, "古い画面からの返信", Actor.for_user(agent), expected_version=stale)


def test_bulk_refuses_invisible_and_invalid_items(db, make_org, make_user, make_ticket, agent):
    a, b = make_ticket(), make_ticket()
    result = service.bulk_apply(db.session, [a.id, b.id, 999999], "priority", "P9", Actor.for_user(agent))
    assert result.done == [] and len(result.refused) == 3
    result = service.bulk_apply(db.session, [a.id], "merge", b.ref, Actor.for_user(agent))
    assert result.done == [a.ref]
    assert db.session.get(Ticket, a.id).merged_into_id == b.id
    with pytest.raises(service.TicketError):
        service.bulk_apply(db.session, [b.id], "explode", "x", Actor.for_user(agent))
