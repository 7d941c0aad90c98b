"""Requester portal: scoping through every route, public replies only, one ticket per form, close, CSAT."""
import io
import re

import pytest
from sqlalchemy import func, select

from helpdesk.audit import Actor
from helpdesk.tickets import attachments as att
from helpdesk.tickets import service
from helpdesk.tickets.models import Attachment, Comment, Ticket

PDF = b"%PDF-1.4\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64


@pytest.fixture
def world(make_org, make_user, make_ticket, agent):
    """Two municipalities, each with a clinic; a ticket in each organisation."""
    city_a = make_org(kind="municipality", name="A市")
    clinic_a = make_org(kind="clinic", parent=city_a, name="A市立診療所")
    city_b = make_org(kind="municipality", name="B市")
    clinic_b = make_org(kind="clinic", parent=city_b, name="B市クリニック")
    users = {
        "city_a": make_user(org=city_a, name="A市 担当"),
        "clinic_a": make_user(org=clinic_a, name="A診療所 医師"),
        "clinic_a2": make_user(org=clinic_a, name="A診療所 看護師"),
        "city_b": make_user(org=city_b, name="B市 担当"),
        "clinic_b": make_user(org=clinic_b, name="B診療所 医師"),
    }
    tickets = {
        "city_a": make_ticket(requester=users["city_a"], subject="割当数量の変更", body="割当を増やしたい"),
        "clinic_a": make_ticket(requester=users["clinic_a"], subject="接種記録の入力エラー", body="保存できません"),
        "clinic_b": make_ticket(requester=users["clinic_b"], subject="接種記録の入力エラー", body="保存できません"),
    }
    return {"users": users, "tickets": tickets, "agent": agent}


def _nonce(client) -> str:
    html = client.get("/portal/new").get_data(as_text=True)
    return re.search(r'name="nonce" type="hidden" value="([^"]+)"', html).group(1)


def _portal_refs(client, **params) -> set[str]:
    html = client.get("/portal", query_string=params).get_data(as_text=True)
    return set(re.findall(r'href="/portal/tickets/(HD-\d+)"', html))


def test_requester_of_org_a_gets_404_everywhere_for_org_b(db, client, login, world):
    other = world["tickets"]["clinic_b"]
    row = att.save_bytes(db.session, other, "b.pdf", PDF, Actor.system(), commit=True)
    login(world["users"]["clinic_a"])
    assert other.ref not in _portal_refs(client)
    assert other.ref not in _portal_refs(client, q="接種記録")
    assert client.get(f"/portal/tickets/{other.ref}").status_code == 404
    assert client.post(f"/portal/tickets/{other.ref}/reply", data={"body": "x"}).status_code == 404
    assert client.post(f"/portal/tickets/{other.ref}/close", data={"action": "resolve"}).status_code == 404
    assert client.post(f"/portal/tickets/{other.ref}/rate", data={"score": "5"}).status_code == 404
    assert client.get(f"/attachments/{row.id}").status_code == 404
    assert client.get(f"/tickets/{other.ref}", follow_redirects=True).status_code == 404
    assert client.get("/portal/tickets/HD-999999").status_code == 404
    assert client.get("/portal/tickets/not-a-ref").status_code == 404
    db.session.expire_all()
    assert db.session.get(Ticket, other.id).status == "new"
    assert db.session.scalar(select(func.count(Comment.id)).where(Comment.ticket_id == other.id)) == 0


def test_scoping_of_the_list(client, login, world):
    t = world["tickets"]
    login(world["users"]["clinic_a2"])  # same clinic, not the requester
    assert _portal_refs(client) == {t["clinic_a"].ref}
    client.post("/logout")
    login(world["users"]["city_a"])  # municipality: its own and its clinics' tickets
    assert _portal_refs(client) == {t["city_a"].ref, t["clinic_a"].ref}
    assert client.get(f"/portal/tickets/{t['clinic_a'].ref}").status_code == 200
    assert client.get(f"/portal/tickets/{t['clinic_b'].ref}").status_code == 404
    client.post("/logout")
    login(world["users"]["clinic_a"])  # a clinic does not see its municipality's tickets
    assert _portal_refs(client) == {t["clinic_a"].ref}
    assert client.get(f"/portal/tickets/{t['city_a'].ref}").status_code == 404


def test_status_filter(db, client, login, world):
    t, agent = world["tickets"], world["agent"]
    service.change_status(db.session, t["city_a"].id, "resolved", Actor.for_user(agent))
    login(world["users"]["city_a"])
    assert _portal_refs(client, status="resolved") == {t["city_a"].ref}
    assert _portal_refs(client, status="active") == {t["clinic_a"].ref}
    assert _portal_refs(client, status="bogus") == {t["city_a"].ref, t["clinic_a"].ref}


def test_internal_notes_never_shown_nor_searchable(db, client, login, world):
    ticket, agent = world["tickets"]["clinic_a"], world["agent"]
    service.add_comment(db.session, ticket.id, "ご不便をおかけしています。確認します。", Actor.for_user(agent), public=True)
    service.add_comment(db.session, ticket.id, "社内メモ：サーバー障害チケット INC-42 と同じ症状", Actor.for_user(agent),
                        public=False)
    login(world["users"]["clinic_a"])
    html = client.get(f"/portal/tickets/{ticket.ref}").get_data(as_text=True)
    assert "ご不便をおかけしています。確認します。" in html
    assert "社内メモ" not in html and "INC-42" not in html
    # The word is in search_text (staff search finds it) but the portal search does not.
    assert "inc-42" in db.session.get(Ticket, ticket.id).search_text
    assert _portal_refs(client, q="INC-42") == set()
    assert _portal_refs(client, q="サーバー障害") == set()
    assert _portal_refs(client, q="ご不便") == {ticket.ref}


def test_staff_names_are_not_shown_to_requesters(db, client, login, world):
    ticket, agent = world["tickets"]["clinic_a"], world["agent"]
    service.add_comment(db.session, ticket.id, "回答です", Actor.for_user(agent), public=True)
    login(world["users"]["clinic_a"])
    html = client.get(f"/portal/tickets/{ticket.ref}").get_data(as_text=True)
    assert "回答です" in html and agent.name not in html and "ヘルプデスク" in html


def test_submit_with_attachments(db, client, login, world):
    user = world["users"]["clinic_a"]
    login(user)
    page = client.get("/portal/new").get_data(as_text=True)
    assert 'data-suggest-target="#kb-suggestions"' in page and "data-suggest-deflection" in page
    assert 'id="kb-suggestions"' in page and 'enctype="multipart/form-data"' in page
    response = client.post("/portal/new", content_type="multipart/form-data", data={
        "nonce": _nonce(client), "subject": "納品数が違う", "description": "10箱のはずが8箱でした",
        "category": "delivery",
        "files": [(io.BytesIO(PDF), "納品書.pdf"), (io.BytesIO("数量,10\n".encode("cp932")), "数量.csv")]})
    assert response.status_code == 302
    ticket = db.session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert response.headers["Location"].endswith(f"/portal/tickets/{ticket.ref}")
    assert ticket.channel == "web" and ticket.requester_id == user.id and ticket.category.code == "delivery"
    names = sorted(a.filename for a in db.session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)))
    assert names == ["数量.csv", "納品書.pdf"]
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "納品書.pdf" in html and ticket.ref in html


def test_refused_file_keeps_the_text_and_creates_nothing(db, client, login, world):
    login(world["users"]["clinic_a"])
    before = db.session.scalar(select(func.count(Ticket.id)))
    response = client.post("/portal/new", content_type="multipart/form-data", data={
        "nonce": _nonce(client), "subject": "請求書について", "description": "詳しい説明をここに書きました",
        "files": [(io.BytesIO(EXE), "請求書.pdf")]})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "「請求書.pdf」は送れない種類のファイルです" in html
    assert "詳しい説明をここに書きました" in html and 'aria-invalid="true"' in html
    assert db.session.scalar(select(func.count(Ticket.id))) == before


def test_missing_fields_are_explained(client, login, world):
    login(world["users"]["clinic_a"])
    response = client.post("/portal/new", data={"nonce": _nonce(client), "subject": "", "description": ""})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "件名を入力してください。" in html and "どんなことでお困りか入力してください。" in html


def test_same_form_twice_creates_one_ticket(db, client, login, world):
    login(world["users"]["clinic_a"])
    data = {"nonce": _nonce(client), "subject": "二重送信", "description": "ダブルクリックしました"}
    before = db.session.scalar(select(func.count(Ticket.id)))
    first = client.post("/portal/new", data=data)
    second = client.post("/portal/new", data=data)
    assert db.session.scalar(select(func.count(Ticket.id))) == before + 1
    assert first.headers["Location"] == second.headers["Location"]


def test_reply_with_attachment_and_reopen(db, client, login, world):
    ticket, agent = world["tickets"]["clinic_a"], world["agent"]
    service.change_status(db.session, ticket.id, "resolved", Actor.for_user(agent))
    login(world["users"]["clinic_a2"])  # anyone of the organisation may reply
    response = client.post(f"/portal/tickets/{ticket.ref}/reply", content_type="multipart/form-data",
                           data={"body": "まだ直りません", "files": [(io.BytesIO(PDF), "画面.pdf")]})
    assert response.status_code == 302
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.status == "open"  # a requester's reply reopens a recently resolved ticket
    comment = db.session.scalar(select(Comment).where(Comment.ticket_id == ticket.id))
    assert comment.body == "まだ直りません" and comment.is_public
    assert db.session.scalar(select(Attachment).where(Attachment.comment_id == comment.id)).filename == "画面.pdf"


def test_reply_to_closed_ticket_is_refused_plainly(db, client, login, world):
    ticket, agent = world["tickets"]["clinic_a"], world["agent"]
    service.change_status(db.session, ticket.id, "closed", Actor.for_user(agent))
    login(world["users"]["clinic_a"])
    response = client.post(f"/portal/tickets/{ticket.ref}/reply", data={"body": "追加の質問"})
    assert response.status_code == 400
    assert "新しいお問い合わせとして送信してください" in response.get_data(as_text=True)


def test_close_own_ticket(db, client, login, world):
    ticket = world["tickets"]["clinic_a"]
    login(world["users"]["clinic_a2"])  # same clinic but not the requester: may not close
    client.post(f"/portal/tickets/{ticket.ref}/close", data={"action": "resolve"})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "new"
    client.post("/logout")
    login(world["users"]["clinic_a"])
    assert client.post(f"/portal/tickets/{ticket.ref}/close", data={"action": "close"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "new"  # only a resolved ticket can be closed
    client.post(f"/portal/tickets/{ticket.ref}/close", data={"action": "resolve"})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "resolved"
    client.post(f"/portal/tickets/{ticket.ref}/close", data={"action": "close"})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "closed"
    assert client.post(f"/portal/tickets/{ticket.ref}/close", data={"action": "delete"}).status_code == 400


def test_csat_only_once_resolved_and_only_once(db, client, login, world):
    ticket, agent = world["tickets"]["clinic_a"], world["agent"]
    login(world["users"]["clinic_a"])
    html = client.get(f"/portal/tickets/{ticket.ref}").get_data(as_text=True)
    assert 'id="csat"' in html and 'name="score"' not in html
    response = client.post(f"/portal/tickets/{ticket.ref}/rate", data={"score": "5"})
    assert response.status_code == 400 and "解決済みのチケットだけ評価できます" in response.get_data(as_text=True)
    service.change_status(db.session, ticket.id, "resolved", Actor.for_user(agent))
    assert 'name="score"' in client.get(f"/portal/tickets/{ticket.ref}").get_data(as_text=True)
    assert client.post(f"/portal/tickets/{ticket.ref}/rate", data={"score": "9"}).status_code == 400
    response = client.post(f"/portal/tickets/{ticket.ref}/rate", data={"score": "4", "comment": "丁寧でした"})
    assert response.status_code == 302 and response.headers["Location"].endswith("#csat")
    db.session.expire_all()
    rated = db.session.get(Ticket, ticket.id)
    assert (rated.csat_score, rated.csat_comment) == (4, "丁寧でした")
    again = client.post(f"/portal/tickets/{ticket.ref}/rate", data={"score": "1"})
    assert again.status_code == 400
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).csat_score == 4


def test_staff_may_view_the_portal_pages(client, login, world):
    ticket = world["tickets"]["clinic_a"]
    login(world["agent"])
    assert client.get("/portal").status_code == 200
    html = client.get(f"/portal/tickets/{ticket.ref}").get_data(as_text=True)
    assert ticket.subject in html and 'name="body"' not in html  # no reply form for staff here


def test_pages_render_without_inline_script_or_handlers(client, login, world):
    login(world["users"]["clinic_a"])
    for url in ("/portal", "/portal/new", f"/portal/tickets/{world['tickets']['clinic_a'].ref}"):
        html = client.get(url).get_data(as_text=True)
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, url
        assert re.search(r"\son[a-z]+=", html) is None, url
        assert re.search(r"\sstyle=", html) is None, url
