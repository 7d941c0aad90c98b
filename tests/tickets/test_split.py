"""Split a ticket (issue 17.3): chosen replies move to a new ticket that links back; events on both; audit."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.tickets import custom_fields as cf
from helpdesk.tickets import service
from helpdesk.tickets.models import Attachment, Comment, Ticket, TicketEvent, TicketLink
from helpdesk.tickets.split import SplitError, split_ticket


@pytest.fixture
def conversation(db, make_org, make_user, agent):
    """A ticket with a requester question, an agent answer, an internal note and a second, different question."""
    org = make_org(kind="clinic")
    requester = make_user(org=org)
    req = Actor(requester.id, requester.email)
    staff = Actor.for_user(agent)
    ticket = service.create_ticket(db.session, actor=req, subject="ログインできない", body="初期パスワードで入れません。",
                                   requester_id=requester.id, category="login", priority="P2")
    answer = service.add_comment(db.session, ticket.id, "パスワードを再設定しました。", staff)
    note = service.add_comment(db.session, ticket.id, "内部: 再設定はL1で対応", staff, public=False)
    other = service.add_comment(db.session, ticket.id, "ついでに、納品日の変更はどうすればよいですか。", req)
    other_answer = service.add_comment(db.session, ticket.id, "納品日の変更は卸業者さまに依頼してください。", staff)
    service.assign(db.session, ticket.id, agent.id, staff)
    db.session.expire_all()
    return {"ticket": db.session.get(Ticket, ticket.id), "requester": requester, "agent": agent, "org": org,
            "answer": answer.id, "note": note.id, "other": other.id, "other_answer": other_answer.id}


def _events(db, ticket_id, kind):
    return db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)
                              .order_by(TicketEvent.id)).all()


def test_split_moves_replies_and_records_both_sides(db, conversation, admin_fields):
    ticket, agent = conversation["ticket"], conversation["agent"]
    staff = Actor.for_user(agent)
    cf.update_ticket_values(db.session, ticket.id, {"lot_number": "LOT-5"}, staff)
    db.session.add(Attachment(ticket_id=ticket.id, comment_id=conversation["other"], filename="a.png",
                              stored_name="split-test-file", content_type="image/png", size=3, sha256="0" * 64))
    db.session.commit()
    version = db.session.get(Ticket, ticket.id).version
    moved = [conversation["other"], conversation["other_answer"]]
    new = split_ticket(db.session, ticket.id, moved, "納品日の変更", staff, expected_version=version)
    db.session.expire_all()
    source, new = db.session.get(Ticket, ticket.id), db.session.get(Ticket, new.id)
    # Same requester, organisation, category, priority and assignee; subject as typed; the assignee works on it.
    assert (new.requester_id, new.organisation_id, new.category_id, new.priority, new.assignee_id) == (
        source.requester_id, source.organisation_id, source.category_id, source.priority, source.assignee_id)
    assert new.subject == "納品日の変更" and new.status == "open"
    assert set(db.session.scalars(select(Comment.id).where(Comment.ticket_id == new.id))) == set(moved)
    assert set(db.session.scalars(select(Comment.id).where(Comment.ticket_id == source.id))) == {
        conversation["answer"], conversation["note"]}
    assert db.session.scalar(select(Attachment.ticket_id).where(Attachment.stored_name == "split-test-file")) == new.id
    # Search follows the text: the moved question is found on the new ticket only.
    assert "納品日" in new.search_text and "納品日" not in source.search_text
    # Events on both timelines, the link between them, the audit row, the custom field value copied.
    (out,) = _events(db, source.id, "split")
    (back,) = _events(db, new.id, "split_from")
    assert (out.after, back.after) == (new.ref, source.ref)
    assert out.detail["comment_ids"] == sorted(moved) and back.detail["count"] == 2
    a, b = sorted((source.id, new.id))
    assert db.session.get(TicketLink, (a, b)) is not None
    assert [t.id for t in service.related_tickets(db.session, source.id)] == [new.id]
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "ticket.split"))
    assert row.detail["new_ref"] == new.ref and row.detail["comment_ids"] == sorted(moved)
    assert cf.values_of(db.session, [new.id])[new.id] == {"lot_number": "LOT-5"}


@pytest.fixture
def admin_fields(db, make_user):
    admin = make_user(roles="admin")
    return cf.create_field(db.session, Actor.for_user(admin), key="lot_number", label_ja="ロット番号", type="text")


def test_split_is_refused_where_it_makes_no_sense(db, conversation, make_ticket):
    ticket, staff = conversation["ticket"], Actor.for_user(conversation["agent"])
    with pytest.raises(SplitError, match="1つ以上選んで"):
        split_ticket(db.session, ticket.id, [], "x", staff)
    stranger = make_ticket()
    foreign = service.add_comment(db.session, stranger.id, "別チケットの返信", staff)
    with pytest.raises(SplitError, match="このチケットにありません"):
        split_ticket(db.session, ticket.id, [conversation["other"], foreign.id], "x", staff)
    with pytest.raises(service.VersionConflict):
        split_ticket(db.session, ticket.id, [conversation["other"]], "x", staff, expected_version=1)
    target = make_ticket()
    service.merge_tickets(db.session, ticket.id, target.id, staff)
    with pytest.raises(SplitError, match="統合されているため"):
        split_ticket(db.session, ticket.id, [conversation["other"]], "x", staff)
    closed = make_ticket()
    reply = service.add_comment(db.session, closed.id, "返信", staff)
    service.change_status(db.session, closed.id, "resolved", staff)
    service.change_status(db.session, closed.id, "closed", staff)
    with pytest.raises(SplitError, match="完了（クローズ）しているため"):
        split_ticket(db.session, closed.id, [reply.id], "x", staff)
    db.session.rollback()
    # Nothing moved, nothing created.
    assert db.session.scalar(select(Comment.ticket_id).where(Comment.id == conversation["other"])) == ticket.id
    assert not db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "split")).all()


def test_split_from_the_ticket_page(db, client, login, conversation):
    ticket = conversation["ticket"]
    login(conversation["agent"])
    page = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert page.count('form="split-form"') == 4 and "選択した返信を新しいチケットに分ける" in page
    refused = client.post(f"/tickets/{ticket.ref}/split", data={"version": str(ticket.version),
                                                                "split_subject": "納品日"})
    assert refused.status_code == 400
    assert "新しいチケットに分ける返信を1つ以上選んでください。" in refused.get_data(as_text=True)
    response = client.post(f"/tickets/{ticket.ref}/split", data={
        "version": str(ticket.version), "split_subject": "納品日の変更について",
        "comment_ids": [str(conversation["other"]), str(conversation["other_answer"])]})
    assert response.status_code == 302
    new_ref = re.search(r"/tickets/(HD-\d+)$", response.headers["Location"]).group(1)
    new_page = client.get(f"/tickets/{new_ref}").get_data(as_text=True)
    assert "納品日の変更について" in new_page and f"{ticket.ref} から分けたチケット（返信 2件）" in new_page
    assert "ついでに、納品日の変更はどうすればよいですか。" in new_page
    old_page = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert f"返信 2件を {new_ref} に分けました" in old_page
    assert "ついでに、納品日の変更" not in old_page


def test_split_scope_and_roles(db, client, login, conversation, make_user):
    ticket = conversation["ticket"]
    login(conversation["requester"])
    response = client.post(f"/tickets/{ticket.ref}/split", data={
        "version": str(ticket.version), "comment_ids": [str(conversation["other"])]})
    assert response.status_code in (302, 403)
    assert db.session.scalar(select(Comment.ticket_id).where(Comment.id == conversation["other"])) == ticket.id
    assert not db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "split")).all()


def test_requester_sees_both_conversations_without_internal_notes(db, client, login, conversation):
    ticket, staff = conversation["ticket"], Actor.for_user(conversation["agent"])
    new = split_ticket(db.session, ticket.id, [conversation["note"], conversation["other"]], "納品日", staff)
    login(conversation["requester"])
    new_page = client.get(f"/portal/tickets/{new.ref}").get_data(as_text=True)
    assert f"{ticket.ref} のやり取りの一部から作ったお問い合わせです" in new_page
    assert "ついでに、納品日の変更" in new_page and "内部: 再設定はL1で対応" not in new_page
    from helpdesk.tickets.portal import conversation as portal_conversation

    entries = portal_conversation(db.session, db.session.get(Ticket, new.id), conversation["requester"])
    assert all(e.body for e in entries if e.kind == "message")  # no empty opening message
    old_page = client.get(f"/portal/tickets/{ticket.ref}").get_data(as_text=True)
    assert f"やり取りの一部を新しいお問い合わせ {new.ref} に分けました" in old_page
