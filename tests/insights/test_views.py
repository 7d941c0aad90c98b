"""Insights pages: access control, charts with tables, CSV export, promote and problem pages."""
import re

import pytest

from helpdesk.audit import Actor
from helpdesk.insights import service, trends


def _insights_urls(app):
    """Every insights URL with sample values, and its methods."""
    samples = {"name": "category", "problem_id": 1, "group_id": 1, "ticket_id": 1, "fmt": "md"}
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/insights"):
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = re.sub(rf"<(?:\w+:)?{arg}>", str(samples[arg]), url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, url))
    return out


def test_requester_gets_403_on_every_insights_url(app, client, login, make_user, make_org, po):
    from helpdesk.audit import Actor

    service.create_problem(__import__("helpdesk.extensions", fromlist=["db"]).db.session, Actor.for_user(po),
                           title="x")
    requester = make_user(roles="requester", org=make_org())
    login(requester)
    urls = _insights_urls(app)
    assert len(urls) >= 14
    for method, url in urls:
        response = client.open(url, method=method)
        assert response.status_code == 403, (method, url, response.status_code)


def test_anonymous_is_sent_to_login(client):
    response = client.get("/insights")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.fixture
def data(db, import_lines, labelled_rows):
    import_lines(labelled_rows)
    service.refresh_groups(db.session)
    trends.refresh_rollups(db.session)


def test_dashboard_has_charts_tables_and_spike_explanation(client, login, po, data):
    login(po)
    html = client.get("/insights?period=week&weeks=20").get_data(as_text=True)
    assert html.count("<svg") >= 6 and 'role="img"' in html
    assert html.count("<table") >= 7
    assert "中央値" in html and "MAD" in html
    assert "SLA" in html
    assert "<script>" not in html and "onclick" not in html
    day = client.get("/insights?period=day&weeks=2")
    assert day.status_code == 200


def test_csv_exports_neutralise_formulas(client, login, po, import_lines, db):
    import_lines([{"external_id": "CSV-1", "subject": "s", "body": "b", "org_code": "=HYPERLINK(1)",
                   "org_kind": "clinic", "channel": "web", "created_at": "2026-11-20T10:00:00+09:00"}])
    trends.refresh_rollups(db.session)
    login(po)
    for name in ("category", "role", "prefecture", "channel", "org", "backlog", "fcr", "spikes", "groups"):
        response = client.get(f"/insights/export/{name}.csv?weeks=20")
        assert response.status_code == 200 and response.mimetype == "text/csv", name
    body = client.get("/insights/export/org.csv?weeks=20").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in body and "\n=HYPERLINK" not in body
    assert client.get("/insights/export/nope.csv").status_code == 404


def test_promote_group_then_work_the_problem(client, login, po, data, db, agent):
    login(po)
    page = client.get("/insights/recurring").get_data(as_text=True)
    group = service.list_groups(db.session)[0]
    assert group.label in page and "問題にする" in page
    response = client.post(f"/insights/recurring/{group.id}/promote", data={"title": "ロック解除の問い合わせが多い"})
    assert response.status_code == 302
    problem_url = response.headers["Location"]
    html = client.get(problem_url).get_data(as_text=True)
    assert "ロック解除の問い合わせが多い" in html and "<svg" in html and "根拠資料" in html
    pid = int(problem_url.rstrip("/").split("/")[-1])
    assert client.get(f"/insights/problems/{pid}/evidence.json").json["tickets"] == group.size
    md = client.get(f"/insights/problems/{pid}/evidence.md")
    assert md.mimetype == "text/markdown" and "## 問い合わせ例" in md.get_data(as_text=True)
    # Wrong transition: an error next to the field, nothing changed.
    bad = client.post(f"/insights/problems/{pid}/transition", data={"to": "verified"})
    assert bad.status_code == 422
    ok = client.post(f"/insights/problems/{pid}/transition", data={"to": "accepted"})
    assert ok.status_code == 302
    assert service.get_problem(db.session, pid).status == "accepted"
    by_hand = client.post(f"/insights/problems/{pid}/transition", data={"to": "sent"})
    assert by_hand.status_code == 422 and "開発トラッカーへ送ったときだけ" in by_hand.get_data(as_text=True)
    assert service.get_problem(db.session, pid).status == "accepted"
    service.transition_problem(db.session, pid, "sent", Actor.for_user(po), sending=True)
    no_date = client.post(f"/insights/problems/{pid}/transition", data={"to": "fixed"})
    assert no_date.status_code == 409 and "リリース日" in no_date.get_data(as_text=True)
    # Edit with an empty title: error shown, not saved.
    empty = client.post(f"/insights/problems/{pid}/edit", data={"title": "", "description": "", "workaround": ""})
    assert empty.status_code == 422 and "件名を入力してください" in empty.get_data(as_text=True)
    client.post(f"/insights/problems/{pid}/edit", data={"title": "ロック", "description": "d",
                                                        "workaround": "画面右上の「ロック解除」から…"})
    db.session.expire_all()
    assert service.get_problem(db.session, pid).workaround.startswith("画面右上")


def test_agent_links_and_unlinks_a_ticket(client, login, agent, po, make_ticket, db):
    from helpdesk.audit import Actor

    problem = service.create_problem(db.session, Actor.for_user(po), title="既知の問題")
    ticket = make_ticket()
    login(agent)
    response = client.post(f"/insights/problems/{problem.id}/link", data={"ticket": ticket.ref,
                                                                          "next": "//evil.example/"})
    assert response.status_code == 302 and "evil" not in response.headers["Location"]
    assert [p.id for p in service.problems_for_ticket(db.session, ticket.id)] == [problem.id]
    bad = client.post(f"/insights/problems/{problem.id}/link", data={"ticket": "12345"})
    assert bad.status_code == 302
    client.post(f"/insights/problems/{problem.id}/unlink/{ticket.id}")
    assert service.problems_for_ticket(db.session, ticket.id) == []
    assert client.get("/insights").status_code == 403  # agents do not see the reports


def test_ticket_page_partial_shows_known_problem_and_workaround(app, db, agent, po, make_ticket):
    from flask import render_template_string
    from flask_login import login_user

    from helpdesk.audit import Actor

    ticket = make_ticket(subject="在庫一覧でエラー", body="E500")
    problem = service.create_problem(db.session, Actor.for_user(po), title="在庫一覧のE500", ticket_ids=[ticket.id])
    service.update_problem(db.session, problem.id, Actor.for_user(po), title=problem.title, description="",
                           workaround="在庫画面は「在庫照会」メニューから開いてください。")
    with app.test_request_context(f"/tickets/{ticket.ref}"):
        login_user(agent)
        html = render_template_string("{% include 'insights/_ticket_problems.html' %}", ticket=ticket)
    assert problem.ref in html and "在庫照会" in html and 'id="problem-choice"' in html
    assert "insights.js" in html and "onclick" not in html


def test_problem_csv_exports(client, login, po, make_ticket, db):
    from helpdesk.audit import Actor

    ticket = make_ticket(subject="=SUM(A1)", body="x")
    problem = service.create_problem(db.session, Actor.for_user(po), title="p", ticket_ids=[ticket.id])
    login(po)
    for name in ("weeks", "impact", "tickets"):
        response = client.get(f"/insights/problems/{problem.id}/export/{name}.csv")
        assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "'=SUM(A1)" in client.get(f"/insights/problems/{problem.id}/export/tickets.csv").get_data(as_text=True)


def test_group_page_lists_tickets_before_promotion(client, login, po, data, db):
    """Issue 16.1: the group page lists its tickets (subject, role, date, linked) and a weekly chart."""
    login(po)
    group = service.list_groups(db.session)[0]
    listing = client.get("/insights/recurring").get_data(as_text=True)
    assert f'href="/insights/recurring/{group.id}"' in listing and 'class="sparkline"' in listing
    page = client.get(f"/insights/recurring/{group.id}").get_data(as_text=True)
    rows = service.group_tickets(db.session, group.id)
    assert len(rows) == group.size and rows
    ticket = rows[0][0]
    assert ticket.ref in page and ticket.subject.split("\n")[0][:10] in page
    assert "未紐付け" in page and "svg" in page and "問題にする" in page
    assert ticket.created_at.astimezone(__import__("helpdesk.common", fromlist=["TOKYO"]).TOKYO).strftime("%Y-%m-%d") in page
    assert client.get("/insights/recurring/999999").status_code == 404
