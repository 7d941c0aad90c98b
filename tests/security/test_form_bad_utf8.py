"""Invalid UTF-8 in a form body: 400, nothing stored, and the typed text given back (issue 13.10)."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from helpdesk.tickets.models import Ticket


@pytest.mark.parametrize("bad", ["%FF", "%C3%28", "%00"])
def test_portal_form_with_bad_bytes_is_refused_with_the_text_kept(client, db, make_user, make_org, login, bad):
    login(make_user(org=make_org()))
    before = db.session.scalar(select(func.count(Ticket.id)))
    subject = "ログイン画面が開かない"
    body = "初期パスワードを入れても\r\n先に進めません。"
    raw = (f"subject={quote(subject)}{bad}&body={quote(body)}&password=Secret-Value-1"
           f"&csrf_token=tok-123").encode()
    response = client.post("/portal/new", data=raw, content_type="application/x-www-form-urlencoded")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert subject in html and "先に進めません。" in html  # the typed text is on the page to copy
    assert "読み取れない文字" in html
    assert "Secret-Value-1" not in html and "tok-123" not in html  # secrets are not echoed
    assert "<textarea" in html and "<script" not in html
    assert db.session.scalar(select(func.count(Ticket.id))) == before


def test_markup_in_kept_text_is_escaped(client):
    raw = b"subject=%3Cscript%3Ealert(1)%3C%2Fscript%3E%FF"
    response = client.post("/login", data=raw, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)" in html and "<script>alert(1)" not in html


def test_json_clients_get_a_problem_document(client):
    response = client.post("/login", data=b"email=%FF", content_type="application/x-www-form-urlencoded",
                           headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.get_json()["status"] == 400
