"""Phone intake: handle time, first-contact resolution, inline contacts, one ticket per form, duplicate hint."""
import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.tickets import intake, service
from helpdesk.tickets.models import Comment, FormNonce, Ticket


def _ms(when: dt.datetime) -> str:
    return str(int(when.timestamp() * 1000))


def _nonce(client) -> str:
    html = client.get("/agent/intake").get_data(as_text=True)
    return re.search(r'name="nonce" type="hidden" value="([^"]+)"', html).group(1)


@pytest.fixture
def caller(make_org, make_user):
    org = make_org(kind="clinic", name="千代田内科クリニック", code="1310160001")
    return make_user(org=org, name="田中 直子", email="clinic@chiyoda-naika.example.jp")


def _count(db) -> int:
    return db.session.scalar(select(func.count(Ticket.id)))


def test_log_call_records_handle_time_and_fcr(db, caller, agent):
    start = dt.datetime(2025, 4, 1, 0, 0, tzinfo=dt.timezone.utc)
    ticket = intake.log_call(db.session, Actor.for_user(agent), subject="パスワードを忘れた", description="再設定したい",
                             caller_id=caller.id, category="password", priority="P3", call_started_at=start,
                             call_ended_at=start + dt.timedelta(seconds=185), resolved_on_call=True)
    assert ticket.channel == "phone"
    assert ticket.handle_seconds == 185
    assert ticket.call_started_at == start and ticket.call_ended_at == start + dt.timedelta(seconds=185)
    assert ticket.status == "resolved" and ticket.resolved_on_first_contact is True
    assert ticket.requester_id == caller.id and ticket.organisation_id == caller.organisation_id
    assert ticket.first_response_at == start
    assert ticket.assignee_id == agent.id


def test_answer_is_a_public_phone_reply_before_resolution(db, caller, agent):
    start = utcnow() - dt.timedelta(minutes=3)
    ticket = intake.log_call(db.session, Actor.for_user(agent), subject="ログインできない", caller_id=caller.id,
                             answer="パスワード再設定の手順をご案内しました。", call_started_at=start,
                             call_ended_at=utcnow(), resolved_on_call=True)
    comment = db.session.scalar(select(Comment).where(Comment.ticket_id == ticket.id))
    assert comment.is_public and comment.via == "phone"
    assert ticket.status == "resolved" and ticket.resolved_on_first_contact
    kinds = [item.kind for kind, _at, item in service.timeline(db.session, ticket, include_internal=True)
             if kind == "event"]
    assert kinds.index("reply") < len(kinds) - 1 and kinds[-1] == "status"


def test_unresolved_call_is_open_and_assigned(db, caller, agent):
    ticket = intake.log_call(db.session, Actor.for_user(agent), subject="配送が届かない", caller_id=caller.id)
    assert ticket.status == "open" and ticket.assignee_id == agent.id
    assert ticket.resolved_on_first_contact is False and ticket.handle_seconds is None


def test_call_window_rejects_implausible_starts():
    now = dt.datetime(2025, 4, 1, 3, 0, tzinfo=dt.timezone.utc)
    assert intake.call_window(_ms(now - dt.timedelta(seconds=90)), now) == (now - dt.timedelta(seconds=90), now)
    assert intake.call_window(_ms(now - dt.timedelta(hours=9)), now)[0] is None
    assert intake.call_window(_ms(now + dt.timedelta(hours=1)), now)[0] is None
    assert intake.call_window(_ms(now + dt.timedelta(seconds=30)), now)[0] == now  # small clock skew
    assert intake.call_window("not-a-number", now)[0] is None
    assert intake.call_window(None, now)[0] is None


def test_intake_page_is_staff_only(client, login, caller, agent):
    login(caller)
    assert client.get("/agent/intake").status_code == 403
    client.post("/logout")
    login(agent)
    html = client.get("/agent/intake").get_data(as_text=True)
    assert 'role="combobox"' in html and 'aria-controls="caller-listbox"' in html
    assert 'id="kb-suggestions"' in html and 'data-suggest-target="#kb-suggestions"' in html
    assert "data-suggest-insert" in html
    assert "<script>" not in html and " onclick=" not in html


def test_post_logs_call_then_gives_a_fresh_form(db, client, login, caller, agent):
    login(agent)
    nonce = _nonce(client)
    started = utcnow() - dt.timedelta(seconds=125)
    response = client.post("/agent/intake", data={
        "nonce": nonce, "caller_id": str(caller.id), "subject": "接種記録を修正したい", "description": "入力ミス",
        "category": "vaccination_records", "priority": "P2", "call_started_at": _ms(started),
        "resolved_on_call": "y"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/agent/intake")
    ticket = db.session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert ticket.subject == "接種記録を修正したい" and ticket.priority == "P2"
    assert ticket.category.code == "vaccination_records"
    assert ticket.handle_seconds >= 125
    assert ticket.resolved_on_first_contact and ticket.status == "resolved"
    page = client.get("/agent/intake").get_data(as_text=True)
    assert ticket.ref in page and f'href="/tickets/{ticket.ref}"' in page  # flash with the reference and a link
    assert nonce not in page  # the next call gets a new form


def test_same_form_twice_creates_one_ticket(db, client, login, caller, agent):
    login(agent)
    data = {"nonce": _nonce(client), "caller_id": str(caller.id), "subject": "二重送信の確認",
            "call_started_at": _ms(utcnow())}
    before = _count(db)
    first = client.post("/agent/intake", data=data)
    second = client.post("/agent/intake", data=data)
    assert _count(db) == before + 1
    ticket = db.session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert first.status_code == 302
    assert second.status_code == 302 and second.headers["Location"].endswith(f"/tickets/{ticket.ref}")


def test_inline_new_contact_is_flagged_for_review(db, client, login, caller, agent):
    login(agent)
    response = client.post("/agent/intake", data={
        "nonce": _nonce(client), "new_name": "山田 太郎", "new_phone": "03-5555-0101",
        "new_org_code": "1310160001", "subject": "初めてログインする", "call_started_at": _ms(utcnow())})
    assert response.status_code == 302
    ticket = db.session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert ticket.requester.name == "山田 太郎" and ticket.requester.needs_review
    assert ticket.organisation_id == caller.organisation_id


def test_errors_are_shown_next_to_the_fields_and_input_is_kept(db, client, login, agent):
    login(agent)
    before = _count(db)
    nonce = _nonce(client)
    response = client.post("/agent/intake", data={
        "nonce": nonce, "subject": "", "description": "消えては困る説明文", "new_name": "鈴木",
        "new_org_code": "000000", "call_started_at": _ms(utcnow())})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "件名を入力してください。" in html
    assert "メールアドレスか電話番号のどちらかを入力してください。" in html
    assert "消えては困る説明文" in html and nonce in html
    assert _count(db) == before


def test_unknown_org_code_is_a_field_error(db, client, login, agent):
    login(agent)
    response = client.post("/agent/intake", data={
        "nonce": _nonce(client), "subject": "件名", "new_name": "鈴木", "new_email": "suzuki@example.jp",
        "new_org_code": "000000", "call_started_at": _ms(utcnow())})
    assert response.status_code == 400
    assert "組織コード「000000」の組織が見つかりません" in response.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.email == "suzuki@example.jp")) is None


def test_no_caller_at_all_is_refused(db, client, login, agent):
    login(agent)
    response = client.post("/agent/intake", data={"nonce": _nonce(client), "subject": "件名"})
    assert response.status_code == 400
    assert "発信者を検索して一覧から選ぶか" in response.get_data(as_text=True)


def test_similar_open_tickets_of_the_same_organisation(db, client, login, caller, make_ticket, make_org,
                                                       make_user, agent):
    mine = make_ticket(requester=caller, subject="ワクチンの配送が届かない", body="本日着の予定の配送が届いていません")
    other_org_user = make_user(org=make_org(kind="clinic"))
    make_ticket(requester=other_org_user, subject="ワクチンの配送が届かない", body="配送が届いていません")
    login(agent)
    data = client.post("/agent/intake/similar",
                       json={"caller_id": str(caller.id), "text": "配送が届いていないという電話"}).get_json()
    assert [t["ref"] for t in data["tickets"]] == [mine.ref]
    assert client.post("/agent/intake/similar", json={"text": "配送"}).get_json() == {"tickets": []}


def test_append_call_to_existing_ticket_adds_a_note_once(db, client, login, caller, make_ticket, agent):
    ticket = make_ticket(requester=caller, subject="配送が届かない")
    login(agent)
    before = _count(db)
    data = {"nonce": _nonce(client), "target": ticket.ref, "caller_id": str(caller.id), "subject": "再度の電話",
            "description": "まだ届いていないとのこと", "call_started_at": _ms(utcnow() - dt.timedelta(seconds=61))}
    response = client.post("/agent/intake/append", data=data)
    assert response.status_code == 302
    again = client.post("/agent/intake/append", data=data)
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/tickets/{ticket.ref}")
    notes = db.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id)).all()
    assert len(notes) == 1 and notes[0].is_public is False and notes[0].via == "phone"
    assert "まだ届いていないとのこと" in notes[0].body and "通話 1分" in notes[0].body
    assert _count(db) == before
    assert db.session.get(FormNonce, data["nonce"]).ticket_id == ticket.id


def test_append_to_unknown_ticket_is_404(client, login, agent):
    login(agent)
    response = client.post("/agent/intake/append", data={"nonce": _nonce(client), "target": "HD-999999",
                                                         "description": "x"})
    assert response.status_code == 404
