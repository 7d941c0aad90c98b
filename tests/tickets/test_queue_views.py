"""The agent queue page, the ticket page, bulk actions, saved views, macros, presence."""
import re

from sqlalchemy import select

from helpdesk.audit import Actor
from helpdesk.tickets import service
from helpdesk.tickets.models import Comment, Macro, SavedView, Ticket, TicketEvent


def test_queue_lists_open_tickets_with_counts(db, client, login, agent, make_ticket):
    t1 = make_ticket(subject="納品予定日が表示されない")
    t2 = make_ticket(subject="パスワードを忘れました")
    service.change_status(db.session, t2.id, "resolved", Actor.for_user(agent))
    login(agent)
    html = client.get("/agent/queue").get_data(as_text=True)
    assert t1.ref in html and "納品予定日が表示されない" in html
    assert t2.ref not in html  # default view: unresolved only
    assert "未割当" in html and "P1 未解決" in html and "SLA超過" in html
    html = client.get("/agent/queue?status=resolved").get_data(as_text=True)
    assert t2.ref in html and t1.ref not in html


def test_queue_bad_filter_is_reported_not_fatal(db, client, login, agent, make_ticket):
    make_ticket()
    login(agent)
    response = client.get("/agent/queue?priority=P9&created_from=2026-13-01")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "優先度「P9」は選べません" in html and "YYYY-MM-DD" in html


def test_requester_cannot_open_queue_and_is_sent_to_portal(db, client, login, make_user, make_ticket, make_org):
    org = make_org()
    user = make_user(org=org)
    ticket = make_ticket(requester=user)
    login(user)
    assert client.get("/agent/queue").status_code == 403
    response = client.get(f"/tickets/{ticket.ref}")
    assert response.status_code == 302 and f"/portal/tickets/{ticket.ref}" in response.headers["Location"]


def test_ticket_page_shows_reply_and_note_differently(db, client, login, agent, make_ticket):
    ticket = make_ticket()
    actor = Actor.for_user(agent)
    service.add_comment(db.session, ticket.id, "公開の返信です", actor, public=True)
    service.add_comment(db.session, ticket.id, "内部だけのメモです", actor, public=False)
    login(agent)
    html = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert re.search(r'<li class="reply">.*?公開の返信です', html, re.S)
    assert re.search(r'<li class="note">.*?内部だけのメモです', html, re.S)
    assert 'id="kb-suggestions"' in html and 'data-suggest-target="#kb-suggestions"' in html


def test_reply_and_internal_note_through_the_form(db, client, login, agent, make_ticket):
    ticket = make_ticket()
    login(agent)
    response = client.post(f"/tickets/{ticket.ref}/reply", data={
        "body": "ご確認ありがとうございます", "visibility": "internal", "version": ticket.version, "seen_event": 0})
    assert response.status_code == 302
    comment = db.session.scalar(select(Comment).where(Comment.ticket_id == ticket.id))
    assert comment.body == "ご確認ありがとうございます" and comment.is_public is False


def test_optimistic_lock_conflict_keeps_typed_text_and_shows_changes(db, client, login, agent, make_user, make_ticket):
    ticket = make_ticket()
    stale_version = ticket.version
    other = make_user(roles="agent", name="別の 担当者")
    service.update_fields(db.session, ticket.id, Actor.for_user(other), priority="P1")
    login(agent)
    typed = "長い返信の下書き：手順1、手順2、手順3 を実施してください。"
    response = client.post(f"/tickets/{ticket.ref}/reply", data={
        "body": typed, "visibility": "public", "version": stale_version, "seen_event": 1})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "他の担当者が更新しました" in html
    assert typed in html  # nothing the agent typed is lost
    assert "その間の変更" in html and "P1" in html
    assert db.session.scalar(select(Comment).where(Comment.ticket_id == ticket.id)) is None
    # The re-rendered form carries the new version: saving again now works.
    version = int(re.search(r'name="version" type="hidden" value="(\d+)"', html).group(1))
    db.session.expire_all()
    assert version == db.session.get(Ticket, ticket.id).version
    response = client.post(f"/tickets/{ticket.ref}/reply", data={
        "body": typed, "visibility": "public", "version": version, "seen_event": 0})
    assert response.status_code == 302


def test_fields_conflict_keeps_selection(db, client, login, agent, make_ticket):
    ticket = make_ticket()
    stale = ticket.version
    service.add_tag(db.session, ticket.id, "x", Actor.for_user(agent))
    service.update_fields(db.session, ticket.id, Actor.for_user(agent), priority="P2")
    login(agent)
    response = client.post(f"/tickets/{ticket.ref}/fields", data={
        "priority": "P4", "category": "", "status": "new", "assignee": "", "version": stale})
    assert response.status_code == 409
    assert re.search(r'<option selected value="P4">|<option value="P4" selected', response.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).priority == "P2"


def test_escalate_requires_reason_in_form(db, client, login, agent, make_ticket):
    ticket = make_ticket()
    login(agent)
    response = client.post(f"/tickets/{ticket.ref}/escalate", data={"tier": "L2", "reason": "", "version": ticket.version})
    assert response.status_code == 400
    assert "エスカレーションの理由を入力してください" in response.get_data(as_text=True)
    response = client.post(f"/tickets/{ticket.ref}/escalate",
                           data={"tier": "L2", "reason": "設定確認が必要", "version": ticket.version})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).tier == "L2"


def test_merge_through_page_keeps_history(db, client, login, agent, make_ticket):
    source, target = make_ticket(subject="重複A"), make_ticket(subject="統合先B")
    service.add_comment(db.session, source.id, "元チケットの返信", Actor.for_user(agent))
    login(agent)
    db.session.refresh(source)
    # Different requesters: refused with the reason in words until the agent confirms it.
    response = client.post(f"/tickets/{source.ref}/merge", data={"target": target.ref, "version": source.version})
    assert response.status_code == 400 and "依頼者が異なります" in response.get_data(as_text=True)
    response = client.post(f"/tickets/{source.ref}/merge", data={"target": target.ref, "version": source.version,
                                                                 "confirm_different": "1"})
    assert response.status_code == 302
    db.session.expire_all()
    src = db.session.get(Ticket, source.id)
    assert src.status == "closed" and src.merged_into_id == target.id
    html = client.get(f"/tickets/{source.ref}").get_data(as_text=True)
    assert "元チケットの返信" in html and target.ref in html
    html = client.get(f"/tickets/{target.ref}").get_data(as_text=True)
    assert source.ref in html


def test_bulk_actions_report_refused_items(db, client, login, agent, make_ticket):
    a, b = make_ticket(), make_ticket()
    service.change_status(db.session, b.id, "closed", Actor.for_user(agent))
    login(agent)
    response = client.post("/agent/queue/bulk", data={"ids": [a.id, b.id], "action": "status", "value": "resolved",
                                                      "back": "/agent/queue"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, a.id).status == "resolved"
    assert db.session.get(Ticket, b.id).status == "closed"
    assert f"{b.ref} は変更できませんでした" in html
    assert "1 件に適用しました" in html


def test_bulk_assign_and_tag(db, client, login, agent, make_ticket):
    a, b = make_ticket(), make_ticket()
    login(agent)
    client.post("/agent/queue/bulk", data={"ids": [a.id, b.id], "action": "assign", "value": "me", "back": "/agent/queue"})
    client.post("/agent/queue/bulk", data={"ids": [a.id, b.id], "action": "tag", "value": "障害2026", "back": "/agent/queue"})
    db.session.expire_all()
    for t in (a, b):
        fresh = db.session.get(Ticket, t.id)
        assert fresh.assignee_id == agent.id and fresh.status == "open" and "障害2026" in fresh.tag_names


def test_saved_view_roundtrip(db, client, login, agent, make_ticket):
    make_ticket(subject="割当数量の確認")
    login(agent)
    response = client.post("/agent/queue/views", data={"name": "P3 の割当", "query": "priority=P3&q=割当"})
    assert response.status_code == 302
    view = db.session.scalar(select(SavedView).where(SavedView.user_id == agent.id))
    assert view.name == "P3 の割当"
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "割当数量の確認" in html and "P3 の割当" in html


def test_macro_admin_and_insert_with_placeholders(db, client, login, make_user, make_ticket):
    admin = make_user(roles="admin agent", name="管理 者")
    ticket = make_ticket()
    login(admin)
    response = client.post("/agent/macros", data={"title": "ロック解除", "body": "{requester_name} 様\n{ref} のロックを解除しました。{agent_name}",
                                                   "set_status": "resolved", "set_category": "login", "active": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    bad = client.post("/agent/macros", data={"title": "x", "body": "{unknown}", "active": "y"})
    assert bad.status_code == 400 and "{unknown}" in bad.get_data(as_text=True)
    macro = db.session.scalar(select(Macro).where(Macro.title == "ロック解除"))
    response = client.post(f"/tickets/{ticket.ref}/reply", data={
        "macro": str(macro.id), "action": "insert_macro", "body": "", "visibility": "public", "version": ticket.version})
    html = response.get_data(as_text=True)
    assert f"{ticket.requester.name} 様" in html and f"{ticket.ref} のロックを解除しました。管理 者" in html
    response = client.post(f"/tickets/{ticket.ref}/reply", data={
        "macro": str(macro.id), "body": f"{ticket.requester.name} 様 解除しました", "visibility": "public",
        "version": ticket.version, "status_after": "resolved", "apply_category": "1"})  # the agent kept both
    assert response.status_code == 302
    db.session.expire_all()
    fresh = db.session.get(Ticket, ticket.id)
    assert fresh.status == "resolved" and fresh.category.code == "login"


def test_macros_admin_only(db, client, login, agent):
    login(agent)
    assert client.get("/agent/macros").status_code == 403


def test_presence_shows_other_agents(db, client, login, agent, make_user, make_ticket):
    ticket = make_ticket()
    other = make_user(roles="agent", name="同時 閲覧者")
    service.touch_presence(ticket.id, other.id, other.name, "replying")
    login(agent)
    data = client.post(f"/tickets/{ticket.ref}/presence", json={"mode": "viewing"}).get_json()
    assert {"name": "同時 閲覧者", "mode": "replying"} in data["others"]
    assert all(o["name"] != agent.name for o in data["others"])
    html = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert "同時 閲覧者" in html


def test_unknown_ticket_is_404(db, client, login, agent):
    login(agent)
    assert client.get("/tickets/HD-999999").status_code == 404
    assert client.get("/tickets/nonsense").status_code == 404


def test_ticket_page_shows_help_button_context_and_account_link(db, client, login, agent, make_ticket):
    ticket = make_ticket(context={"screen_id": "SCR-042", "error_code": "E1023"})
    login(agent)
    html = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert "SCR-042" in html and "E1023" in html
    assert f'href="/accounts/users/{ticket.requester_id}"' in html
