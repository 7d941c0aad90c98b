"""Automatic assignment (issue 15.10): rules per category / requester role, round robin and least loaded
among agents on shift, never an absent or disabled agent, the supervisor's page and the agent's shift page."""
import threading

import pytest
from sqlalchemy import select

from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.tickets import assignment, service
from helpdesk.tickets.models import AssignmentRule, Category, TicketEvent


@pytest.fixture
def boss(make_user):
    return make_user(roles="supervisor", email="boss@helpdesk.example.jp", name="主任 花子")


@pytest.fixture
def team(db, make_user, boss):
    agents = [make_user(roles="agent", name=f"受付 {n}") for n in ("一郎", "二郎", "三郎")]
    for a in agents:
        assignment.set_shift(db.session, Actor(a.id, a.email), a.id, True)
    return agents


def _rule(db, boss, agents, **kw):
    kw.setdefault("category_id", None)
    kw.setdefault("role", None)
    kw.setdefault("mode", "round_robin")
    return assignment.save_rule(db.session, Actor(boss.id, boss.email), name=kw.pop("name", "全件"),
                                agent_ids=[a.id for a in agents], **kw)


def test_round_robin_takes_turns_and_writes_a_normal_assignment_event(db, team, boss, make_ticket):
    rule = _rule(db, boss, team)
    got = [make_ticket().assignee_id for _ in range(5)]
    ids = [a.id for a in team]
    assert got == [ids[0], ids[1], ids[2], ids[0], ids[1]]
    assert db.session.get(AssignmentRule, rule.id).last_agent_id == ids[1]
    ticket = make_ticket()
    assert ticket.status == "open" and ticket.assignee_id == ids[2]
    events = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                .order_by(TicketEvent.id)).all()
    assert [(e.kind, e.actor_label) for e in events] == [
        ("created", events[0].actor_label), ("status", "自動割当"), ("assignee", "自動割当")]
    assert events[2].after == team[2].email
    audit_row = db.session.scalars(select(AuditLog).where(AuditLog.action == "ticket.auto_assigned",
                                                          AuditLog.object_id == str(ticket.id))).one()
    assert audit_row.detail["rule_id"] == rule.id and audit_row.detail["assignee_id"] == ids[2]


def test_never_an_absent_or_disabled_agent_and_nobody_left_means_unassigned(db, team, boss, make_ticket):
    _rule(db, boss, team)
    one, two, three = team
    assignment.set_shift(db.session, Actor(two.id, two.email), two.id, False)
    three.state = "disabled"
    db.session.commit()
    assert {make_ticket().assignee_id for _ in range(4)} == {one.id}
    assignment.set_shift(db.session, Actor(one.id, one.email), one.id, False)
    ticket = make_ticket()
    assert ticket.assignee_id is None and ticket.status == "new"


def test_agent_without_shift_row_is_not_on_shift(db, make_user, boss, make_ticket):
    never = make_user(roles="agent")
    _rule(db, boss, [never])
    assert make_ticket().assignee_id is None


def test_least_loaded_picks_fewest_active_tickets(db, team, boss, make_ticket):
    one, two, three = team
    actor = Actor(boss.id, boss.email)
    for agent, n in ((one, 2), (two, 0), (three, 1)):
        for _ in range(n):
            service.assign(db.session, make_ticket().id, agent.id, actor)
    # A resolved ticket is no load.
    done = make_ticket()
    service.assign(db.session, done.id, two.id, actor)
    service.change_status(db.session, done.id, "resolved", actor)
    _rule(db, boss, team, mode="least_loaded")
    got = [make_ticket().assignee_id for _ in range(4)]
    # Loads one 2, two 0, three 1 → two; two and three tie at 1, round robin after two → three;
    # then two has 1 → two; all at 2, round robin after two → three.
    assert got == [two.id, three.id, two.id, three.id]


def test_first_matching_rule_by_category_and_role(db, team, boss, make_org, make_user, make_ticket):
    one, two, three = team
    login_cat = db.session.scalars(select(Category).where(Category.code == "login")).one()
    _rule(db, boss, [one], name="ログイン・医療機関", category_id=login_cat.id, role="clinic", position=1)
    _rule(db, boss, [two], name="自治体", role="municipality", position=2)
    _rule(db, boss, [three], name="その他", position=3)
    clinic, town = make_org(kind="clinic"), make_org(kind="municipality")
    assert make_ticket(org=clinic, requester=make_user(org=clinic), category="login").assignee_id == one.id
    assert make_ticket(org=clinic, requester=make_user(org=clinic)).assignee_id == three.id
    assert make_ticket(org=town, requester=make_user(org=town), category="login").assignee_id == two.id
    off = db.session.scalars(select(AssignmentRule).where(AssignmentRule.name == "自治体")).one()
    assignment.set_rule_active(db.session, Actor(boss.id, boss.email), off.id, False)
    assert make_ticket(org=town, requester=make_user(org=town)).assignee_id == three.id


def test_explicit_assignee_is_kept(db, team, boss, make_ticket):
    _rule(db, boss, team)
    other = team[2]
    assert make_ticket(assignee_id=other.id).assignee_id == other.id
    assert db.session.get(AssignmentRule, _first_rule_id(db)).last_agent_id is None


def _first_rule_id(db):
    return db.session.scalars(select(AssignmentRule.id)).first()


def test_supervisor_page_creates_edits_and_switches_off(db, client, login, team, boss, agent):
    login(agent)
    assert client.get("/agent/assignment").status_code == 403
    client.post("/logout")
    login(boss)
    page = client.get("/agent/assignment").get_data(as_text=True)
    assert "受付 一郎" in page and "勤務中" in page
    bad = client.post("/agent/assignment", data={"name": "", "mode": "round_robin"})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "ルール名を入力してください。" in html and "担当者を一人以上選んでください。" in html
    ok = client.post("/agent/assignment", data={"name": "医療機関", "role": "clinic", "mode": "least_loaded",
                                                "agents": [str(team[0].id), str(team[1].id)], "position": "1",
                                                "active": "y"})
    assert ok.status_code == 302
    rule = db.session.scalars(select(AssignmentRule).where(AssignmentRule.name == "医療機関")).one()
    assert (rule.role, rule.mode, assignment.parse_agent_ids(rule.agent_ids)) == (
        "clinic", "least_loaded", sorted([team[0].id, team[1].id]))
    edit = client.get(f"/agent/assignment/{rule.id}").get_data(as_text=True)
    assert 'value="医療機関"' in edit
    assert client.post(f"/agent/assignment/{rule.id}", data={
        "name": "医療機関（改）", "mode": "round_robin", "agents": [str(team[2].id)], "position": "2",
        "active": "y"}).status_code == 302
    db.session.expire_all()
    rule = db.session.get(AssignmentRule, rule.id)
    assert (rule.name, rule.mode, rule.role, rule.agent_ids) == ("医療機関（改）", "round_robin", None, str(team[2].id))
    assert client.post(f"/agent/assignment/{rule.id}/active", data={"active": "0"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(AssignmentRule, rule.id).active is False
    actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.object_type == "assignment_rule")))
    assert {"assignment_rule.created", "assignment_rule.updated", "assignment_rule.disabled"} <= actions
    # The supervisor marks an agent absent.
    assert client.post(f"/agent/assignment/shift/{team[0].id}", data={"on_shift": "0"}).status_code == 302
    assert assignment.on_shift(db.session, team[0].id) is False


def test_agent_marks_own_shift(db, client, login, agent):
    login(agent)
    assert "不在" in client.get("/agent/shift").get_data(as_text=True)
    assert client.post("/agent/shift", data={"on_shift": "1"}).status_code == 302
    assert assignment.on_shift(db.session, agent.id) is True
    assert "勤務中" in client.get("/agent/shift").get_data(as_text=True)
    client.post("/agent/shift", data={"on_shift": "0"})
    assert assignment.on_shift(db.session, agent.id) is False
    assert db.session.scalars(select(AuditLog.action).where(AuditLog.actor_id == agent.id,
                                                            AuditLog.action.like("agent_shift.%"))).all() == [
        "agent_shift.on", "agent_shift.off"]


def test_pages_in_english(db, client, login, boss, team):
    login(boss)
    client.post("/lang", data={"lang": "en"})
    # The test holds one app context for all its requests: forget the locale flask-babel cached in it.
    from flask_babel import refresh

    refresh()
    html = client.get("/agent/assignment").get_data(as_text=True)
    assert "Automatic assignment" in html and "On shift" in html and "自動割当" not in html
