"""Problems (list, get, link tickets), insights (trends, recurring groups), and problem webhooks."""
from __future__ import annotations

import json

from sqlalchemy import select

from helpdesk.api import service as api_service
from helpdesk.audit import Actor
from helpdesk.insights import service as insights
from helpdesk.insights import trends
from helpdesk.insights.models import ProblemTicket, RecurringGroup, RecurringMember
from helpdesk.notify.models import Outbox
from tests.api.conftest import problem_of


def _po(make_user):
    return make_user(roles="product_owner")


def test_problems_list_get_and_link(db, make_user, make_ticket, api_for):
    po = _po(make_user)
    t1, t2 = make_ticket(), make_ticket(subject="別件")
    problem = insights.create_problem(db.session, Actor.for_user(po), title="初回ログインでロック", ticket_ids=[t1.id])
    api = api_for(po, scopes=("read", "problems:write"))
    page = api.get("/problems").get_json()
    assert page["items"][0]["id"] == problem.id and page["items"][0]["ticket_count"] == 1
    assert api.get("/problems?status=candidate").get_json()["items"][0]["status"] == "candidate"
    one = api.get(f"/problems/{problem.id}").get_json()
    assert one["ticket_refs"] == [t1.ref] and one["created_at"].endswith("+09:00")
    r = api.post(f"/problems/{problem.id}/tickets", {"ticket_ref": t2.ref})
    assert r.status_code == 201 and r.get_json()["linked"] is True
    again = api.post(f"/problems/{problem.id}/tickets", {"ticket_ref": t2.ref})
    assert again.status_code == 200 and again.get_json()["linked"] is False
    assert db.session.get(ProblemTicket, (problem.id, t2.id)) is not None
    body = problem_of(api.post(f"/problems/{problem.id}/tickets", {"ticket_ref": "HD-999999"}), 422)
    assert "ticket_ref" in body["errors"]
    problem_of(api.get("/problems/999999"), 404)
    problem_of(api.get("/problems?status=open"), 400)


def test_problems_need_insights_role_and_scope(db, make_user, make_ticket, agent, api_for):
    po = _po(make_user)
    problem = insights.create_problem(db.session, Actor.for_user(po), title="P")
    problem_of(api_for(agent, scopes=("read",)).get("/problems"), 403)
    requester = make_user(org=None)
    problem_of(api_for(requester).get(f"/problems/{problem.id}"), 403)
    # read-only token of a product owner cannot link
    t = make_ticket()
    problem_of(api_for(po, scopes=("read",)).post(f"/problems/{problem.id}/tickets", {"ticket_ref": t.ref}), 403)
    # an agent with problems:write may link (the web UI lets staff link too)
    assert api_for(agent, scopes=("problems:write",)).post(
        f"/problems/{problem.id}/tickets", {"ticket_ref": t.ref}).status_code == 201


def test_trends_and_recurring(db, make_user, make_ticket, api_for):
    po = _po(make_user)
    tickets = [make_ticket(category="login") for _ in range(3)]
    trends.refresh_rollups(db.session)
    db.session.commit()
    api = api_for(po, scopes=("read",))
    data = api.get("/insights/trends?by=category&period=day").get_json()
    assert data["by"] == "category" and data["periods"] and data["totals"].get("login") == 3
    problem_of(api.get("/insights/trends?by=colour"), 400)
    problem_of(api.get("/insights/trends?since=2026-05-01&until=2026-04-01"), 400)
    group = RecurringGroup(label="ログイン ロック", top_terms=["ロック", "ログイン"], size=3, roles={"clinic": 3},
                           trend="rising", active=True)
    db.session.add(group)
    db.session.flush()
    db.session.add_all([RecurringMember(group_id=group.id, ticket_id=t.id) for t in tickets])
    db.session.commit()
    groups = api.get("/insights/recurring").get_json()["items"]
    assert groups[0]["label"] == "ログイン ロック" and groups[0]["ticket_refs"] == [t.ref for t in tickets]


def test_problem_webhooks_queued(db, make_user, make_ticket):
    sub = api_service.create_subscription(db.session, name="tracker", url="https://tracker.example.com/in",
                                          events=["problem.created", "problem.updated"], actor=Actor.system("t"),
                                          resolver=lambda h, p: ["93.184.216.34"])
    po = _po(make_user)
    problem = insights.create_problem(db.session, Actor.for_user(po), title="配送完了が登録できない")
    insights.link_ticket(db.session, problem.id, make_ticket().id, Actor.for_user(po))
    insights.transition_problem(db.session, problem.id, "accepted", Actor.for_user(po))
    rows = db.session.scalars(select(Outbox).where(Outbox.object_ref == f"subscription:{sub.id}")
                              .order_by(Outbox.id)).all()
    events = [r.payload["event"] for r in rows]
    assert events == ["problem.created", "problem.updated", "problem.updated"], events
    assert rows[0].payload["data"]["title"] == "配送完了が登録できない"
    assert rows[1].payload["data"]["change"]["kind"] == "ticket_linked"
    assert rows[2].payload["data"]["status"] == "accepted"
    assert json.dumps(rows[2].payload, ensure_ascii=False)
