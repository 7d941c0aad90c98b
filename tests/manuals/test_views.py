import csv
import io

from sqlalchemy import select

from helpdesk.manuals import service
from helpdesk.manuals.models import ArticleFeedback, ArticleView, Deflection
from helpdesk.tickets.models import TicketArticle, TicketEvent


def test_index_lists_roles_with_own_role_first(client, login, make_org, make_user, manuals_dir):
    page = client.get("/manuals").get_data(as_text=True)
    assert "パスワードを忘れたときの再設定" in page and "希望量の入力" in page
    user = make_user(org=make_org(kind="wholesaler"))
    login(user)
    page = client.get("/manuals").get_data(as_text=True)
    assert page.index('id="sec-wholesaler"') < page.index('id="sec-common"') < page.index('id="sec-municipality"')


def test_search_box(client, manuals_dir):
    page = client.get("/manuals", query_string={"q": "ﾛｯｸされた"}).get_data(as_text=True)
    assert "アカウントがロックされた場合" in page.split("検索結果")[1]


def test_article_page_renders_and_records_view(client, db, manuals_dir):
    resp = client.get("/manuals/common/password-reset")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<h1>パスワードを忘れたときの再設定</h1>" in html
    assert 'href="#sec-2"' in html  # table of contents
    assert "2026-11-01" in html and "アカウントがロックされた場合" in html  # updated + related
    assert 'hreflang="en"' in html  # language switch
    assert db.session.scalar(select(ArticleView).where(ArticleView.slug == "password-reset")) is not None
    en = client.get("/manuals/common/password-reset?lang=en").get_data(as_text=True)
    assert "Resetting a forgotten password" in en
    assert client.get("/manuals/clinic/password-reset").status_code == 301
    assert client.get("/manuals/common/nope").status_code == 404
    assert client.get("/manuals/evil/password-reset").status_code == 404


def test_feedback_via_form_once(client, db, login, make_user, manuals_dir):
    user = make_user()
    login(user)
    url = "/manuals/common/password-reset/feedback"
    assert client.post(url, data={"helpful": "yes", "comment": "助かりました", "lang": "ja"}).status_code == 302
    resp = client.post(url, data={"helpful": "no", "lang": "ja"}, follow_redirects=True)
    assert "既に回答" in resp.get_data(as_text=True)
    rows = db.session.scalars(select(ArticleFeedback).where(ArticleFeedback.user_id == user.id)).all()
    assert [(r.helpful, r.comment) for r in rows] == [(True, "助かりました")]
    bad = client.post("/manuals/common/account-locked/feedback", data={"lang": "ja"}, follow_redirects=True)
    assert "「はい」か「いいえ」を選んでください" in bad.get_data(as_text=True)


def test_suggest_endpoint(client, login, make_org, make_user, agent, manuals_dir):
    assert client.get("/manuals/suggest?q=パスワード").status_code == 302  # sign-in required
    login(agent)
    data = client.get("/manuals/suggest", query_string={"q": "お世話になっております。ﾊﾟｽﾜｰﾄﾞを忘れました"}).get_json()
    top = data["results"][0]
    assert top["slug"] == "password-reset" and top["url"].endswith("/manuals/common/password-reset?lang=ja")
    assert set(top) >= {"slug", "title", "role", "url", "excerpt"} and 1 <= len(data["results"]) <= 5
    assert client.get("/manuals/suggest?q=").get_json()["results"] == []


def test_suggest_for_requester_is_scoped_to_role(client, login, make_org, make_user, manuals_dir):
    login(make_user(org=make_org(kind="wholesaler")))
    data = client.get("/manuals/suggest", query_string={"q": "納品の数量を登録", "role": "clinic"}).get_json()
    assert data["role"] == "wholesaler"
    assert {r["role"] for r in data["results"]} <= {"wholesaler", "common"}
    assert data["results"][0]["slug"] == "delivery-completion"


def test_link_article_writes_ticket_event(client, db, login, agent, make_ticket, manuals_dir):
    ticket = make_ticket()
    login(agent)
    resp = client.post("/manuals/link", data={"ticket_ref": ticket.ref, "slug": "password-reset"},
                       headers={"Accept": "application/json"})
    assert resp.status_code == 200 and resp.get_json()["ok"] is True
    assert db.session.get(TicketArticle, (ticket.id, "password-reset")) is not None
    ev = db.session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "article"))
    assert ev is not None and ev.after == "password-reset" and ev.actor_id == agent.id
    unknown = client.post("/manuals/link", data={"ticket_ref": ticket.ref, "slug": "no-such"},
                          headers={"Accept": "application/json"})
    assert unknown.status_code == 404
    bad_ref = client.post("/manuals/link", data={"ticket_ref": "123", "slug": "password-reset"},
                          headers={"Accept": "application/json"})
    assert bad_ref.status_code == 400 and "ticket_ref" in bad_ref.get_json()["errors"]


def test_link_requires_staff(client, login, make_user, make_ticket, manuals_dir):
    ticket = make_ticket()
    login(make_user())
    assert client.post("/manuals/link", data={"ticket_ref": ticket.ref, "slug": "password-reset"}).status_code == 403


def test_deflection_flow(client, db, login, make_user, manuals_dir):
    login(make_user())
    token = "d" * 32
    client.get(f"/manuals/common/password-reset?src=suggest&sg={token}")
    assert db.session.scalar(select(Deflection).where(Deflection.token == token)) is not None
    assert client.post("/manuals/deflection/submitted", data={"token": token}).get_json()["updated"] == 1


def test_analytics_access_and_csv(client, db, login, make_user, agent, make_ticket, manuals_dir):
    login(agent)
    assert client.get("/manuals/analytics").status_code == 403
    client.post("/logout")
    ticket = make_ticket(subject="=HYPERLINK(\"x\")")
    from helpdesk.audit import Actor
    from helpdesk.tickets import service as tickets

    tickets.link_article(db.session, ticket.id, "password-reset", Actor.system(), resolved_by=True)
    service.record_view(db.session, slug="password-reset", lang="ja", user_id=None)
    po = make_user(roles="product_owner")
    login(po)
    page = client.get("/manuals/analytics")
    assert page.status_code == 200 and "パスワードを忘れたときの再設定" in page.get_data(as_text=True)
    resp = client.get("/manuals/analytics.csv")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    head = rows[0]
    row = next(r for r in rows if r and r[0] == "password-reset")
    assert row[head.index("views")] == "1" and row[head.index("tickets_linked")] == "1"
    assert row[head.index("tickets_resolved")] == "1"


def test_csv_cells_neutralised(client, login, make_user, manuals_dir, monkeypatch):
    stats = service.ArticleStats("=cmd", "common", "+SUM(A1)", "-x")
    monkeypatch.setattr(service, "analytics", lambda *a, **k: ([stats], []))
    login(make_user(roles="supervisor"))
    text = client.get("/manuals/analytics.csv").get_data(as_text=True)
    assert "'=cmd" in text and "'+SUM(A1)" in text and "'-x" in text
