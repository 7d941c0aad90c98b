"""Organisations / users look-ups, manual articles, and the in-app help button."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from helpdesk.accounts.models import AuditLog
from helpdesk.common import utcnow
from helpdesk.tickets.models import Ticket
from tests.api.conftest import problem_of


def test_organisation_search_with_activation_counts(make_org, make_user, agent, api_for):
    org = make_org(kind="municipality", code="131999", name="テスト市")
    make_user(org=org, state="activated")
    make_user(org=org, state="invited")
    make_user(org=org, state="activated", locked_at=utcnow(), locked_until=utcnow() + dt.timedelta(minutes=5))
    api = api_for(agent, scopes=("read",))
    page = api.get("/organisations?code=131999").get_json()
    assert [o["code"] for o in page["items"]] == ["131999"]
    assert page["items"][0]["activation"] == {"invited": 1, "activated": 2, "disabled": 0, "locked": 1}
    assert api.get("/organisations?q=テスト市").get_json()["items"][0]["code"] == "131999"
    one = api.get("/organisations/131999")
    assert one.status_code == 200 and one.get_json()["kind"] == "municipality"
    problem_of(api.get("/organisations/000000"), 404)
    problem_of(api.get("/organisations?kind=hospital"), 400)


def test_user_lookup_by_email_and_phone(make_org, make_user, agent, api_for):
    org = make_org()
    caller = make_user(org=org, email="caller@clinic.example.jp", phone="03-1234-5678", state="activated",
                       activated_at=utcnow())
    api = api_for(agent, scopes=("read",))
    by_phone = api.get("/users", query_string={"phone": "０３（1234）5678"}).get_json()["items"]
    assert [u["email"] for u in by_phone] == ["caller@clinic.example.jp"]
    assert by_phone[0]["organisation"]["code"] == org.code and by_phone[0]["state"] == "activated"
    assert by_phone[0]["activated_at"].endswith("+09:00")
    assert api.get("/users?email=CALLER@clinic.example.jp").get_json()["items"][0]["id"] == caller.id
    assert api.get(f"/users/{caller.id}").get_json()["email"] == caller.email
    problem_of(api.get("/users?phone=12"), 400)


def test_requester_sees_only_own_organisation(make_org, make_user, api_for):
    mine, other = make_org(), make_org()
    me = make_user(org=mine)
    stranger = make_user(org=other)
    api = api_for(me, scopes=("read",))
    assert [o["code"] for o in api.get("/organisations").get_json()["items"]] == [mine.code]
    problem_of(api.get(f"/organisations/{other.code}"), 404)
    problem_of(api.get(f"/users/{stranger.id}"), 404)
    assert api.get(f"/users?email={stranger.email}").get_json()["items"] == []


def test_articles_search_suggest_get(agent, api_for):
    api = api_for(agent, scopes=("read",))
    hits = api.get("/articles", query_string={"q": "パスワード 忘れた"}).get_json()["items"]
    assert hits and "password-reset" in [h["slug"] for h in hits[:3]]
    assert hits[0]["url"].startswith("http")
    sugg = api.get("/articles/suggest", query_string={"text": "パスワードを忘れてログインできない", "limit": 3})
    assert sugg.status_code == 200 and 1 <= len(sugg.get_json()["items"]) <= 3
    art = api.get("/articles/password-reset?lang=en").get_json()
    assert art["lang"] == "en" and art["body_markdown"] and set(art["translations"]) == {"ja", "en"}
    problem_of(api.get("/articles/no-such-article"), 404)
    problem_of(api.get("/articles"), 400)
    problem_of(api.get("/articles?q=x&role=hospital"), 400)


def test_help_request_known_user(db, make_org, make_user, make_token, client, agent):
    from tests.api.conftest import Api

    org = make_org(kind="clinic")
    user = make_user(org=org, email="nurse@clinic.example.jp")
    vds = Api(client, make_token(agent, scopes=("read", "tickets:write"), name="VDS本番"))
    r = vds.post("/help-requests", {"login_id": "Nurse@clinic.example.jp", "organisation_code": org.code,
                                    "screen_id": "SCR-ORDER-01", "error_code": "E4012",
                                    "browser": "Edge 120", "message": "希望数量を入力して登録するとエラーになります"})
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    ticket = db.session.get(Ticket, int(out["ticket"]["ref"][3:]))
    assert ticket.channel == "api" and ticket.requester_id == user.id and ticket.organisation_id == org.id
    assert ticket.context["screen_id"] == "SCR-ORDER-01" and ticket.context["error_code"] == "E4012"
    assert ticket.context["browser"] == "Edge 120" and ticket.context["known_user"] is True
    assert out["suggestions"] and all(s["role"] in ("clinic", "common") for s in out["suggestions"])
    assert {"slug", "title", "url"} <= set(out["suggestions"][0])
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "api.help_request"))
    assert audit.actor_label == "api:VDS本番"
    # The agent's API view shows the context.
    assert vds.get(f"/tickets/{out['ticket']['ref']}").get_json()["context"]["screen_id"] == "SCR-ORDER-01"


def test_help_request_unknown_login_files_for_organisation(db, make_org, agent, api_for):
    org = make_org(kind="wholesaler")
    api = api_for(agent)
    r = api.post("/help-requests", {"login_id": "new@wholesale.example.jp", "organisation_code": org.code,
                                    "message": "配送完了が登録できない"})
    assert r.status_code == 201
    ticket = db.session.get(Ticket, int(r.get_json()["ticket"]["ref"][3:]))
    assert ticket.requester_id is None and ticket.organisation_id == org.id
    assert ticket.context["login_id"] == "new@wholesale.example.jp" and ticket.context["known_user"] is False
    body = problem_of(api.post("/help-requests", {"login_id": "x@y.jp", "message": "だれ？"}), 422)
    assert "organisation_code" in body["errors"]


def test_help_request_requester_token_only_for_self(make_org, make_user, api_for):
    org = make_org()
    me = make_user(org=org)
    api = api_for(me)
    assert api.post("/help-requests", {"message": "画面が固まります"}).status_code == 201
    body = problem_of(api.post("/help-requests", {"login_id": "someone@else.jp", "message": "代理"}), 403)
    assert "login_id" in body["errors"]


def test_help_context_snippet_renders_escaped_fields(app):
    from types import SimpleNamespace

    from flask import render_template_string

    ticket = SimpleNamespace(context={"login_id": "a@b.jp", "screen_id": "<script>x</script>", "error_code": "E1",
                                      "known_user": False, "suggested": ["password-reset"]})
    with app.test_request_context():
        html = render_template_string('{% include "api/_help_context.html" %}', ticket=ticket)
    assert "画面ID" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert "登録されていません" in html and "password-reset" in html
    with app.test_request_context():
        assert render_template_string('{% include "api/_help_context.html" %}',
                                      ticket=SimpleNamespace(context=None)).strip() == ""
