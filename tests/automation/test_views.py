"""The supervisor's automation pages: list (order, on/off), form with condition/action rows and errors next
to them, dry run, audit of every rule change, access, English."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.automation import service
from helpdesk.automation.models import AutomationRule
from helpdesk.tickets.models import Ticket


@pytest.fixture
def boss(make_user):
    return make_user(roles="supervisor", email="boss@helpdesk.example.jp", name="主任 花子")


def _form(**rows):
    data = {"name": "P1 は L2 へ", "trigger": "created", "interval_minutes": "", "active": "y"}
    data.update(rows)
    return data


def _audit(db, action, *rule_ids):
    """Audit rows of `action` about these rules (the append-only log keeps other tests' committed rows on PostgreSQL)."""
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action,
                                                     AuditLog.object_id.in_([str(i) for i in rule_ids]))
                              .order_by(AuditLog.id)).all()


def test_only_supervisors_and_admins(client, login, agent, boss):
    login(agent)
    assert client.get("/agent/automation").status_code == 403
    assert client.post("/agent/automation/new", data=_form()).status_code == 403
    client.post("/logout")
    login(boss)
    page = client.get("/agent/automation")
    assert page.status_code == 200 and "自動ルール" in page.get_data(as_text=True)


def test_create_from_the_form_stores_canonical_values_and_is_audited(db, client, login, boss, make_user):
    l2 = make_user(roles="specialist", email="l2@helpdesk.example.jp")
    login(boss)
    response = client.post("/agent/automation/new", data=_form(**{
        "cond-0-field": "priority", "cond-0-op": "is", "cond-0-value": "P1",
        "cond-2-field": "role", "cond-2-op": "is", "cond-2-value": "医療機関",
        "act-0-kind": "assign_agent", "act-0-value": "l2@helpdesk.example.jp",
        "act-1-kind": "send_mail", "act-1-value": "依頼者", "act-1-subject": "{ref} を専門担当に回しました",
        "act-1-text": "{requester_name} 様", }))
    assert response.status_code == 302
    rule = db.session.scalars(select(AutomationRule)).one()
    assert rule.trigger_on == "created" and rule.active is True
    assert rule.conditions == [{"field": "priority", "op": "is", "value": "P1"},
                               {"field": "role", "op": "is", "value": "clinic"}]
    assert rule.actions[0] == {"kind": "assign_agent", "value": l2.id}
    assert rule.actions[1]["value"] == "requester" and rule.actions[1]["subject"] == "{ref} を専門担当に回しました"
    created = _audit(db, "automation_rule.created", rule.id)
    assert len(created) == 1 and created[0].actor_id == boss.id and created[0].detail["after"]["name"] == "P1 は L2 へ"
    # The list says it in words; the edit form shows the login again, not the id.
    listing = client.get("/agent/automation").get_data(as_text=True)
    assert "優先度 が次と同じ 「P1」" in listing and "利用者の区分 が次と同じ 「医療機関」" in listing
    edit = client.get(f"/agent/automation/{rule.id}").get_data(as_text=True)
    assert 'value="l2@helpdesk.example.jp"' in edit


def test_errors_are_shown_next_to_the_fields_and_nothing_is_saved(db, client, login, boss):
    login(boss)
    response = client.post("/agent/automation/new", data=_form(**{
        "name": "", "trigger": "timed", "interval_minutes": "",
        "cond-1-field": "hours_since_update", "cond-1-op": "gte", "cond-1-value": "abc",
        "act-0-kind": "set_priority", "act-0-value": "P9"}))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AutomationRule)) == 0
    for key, words in (("cond-1-value", "時間は数字で入力してください"), ("act-0-value", "優先度は P1〜P4 で入力してください"),
                       ("interval_minutes", "実行の間隔（分）を入力してください")):
        assert re.search(rf'<p class="field-error" id="{key}-error">[^<]*{words}', html), key
        if key.startswith(("cond", "act")):
            assert f'aria-describedby="{key}-error"' in html
    assert "ルール名を入力してください。" in html
    # A row with only its text filled in is not dropped silently.
    response = client.post("/agent/automation/new", data=_form(**{"act-1-text": "本文だけ"}))
    assert re.search(r'id="act-1-kind-error">[^<]*操作を選んでください', response.get_data(as_text=True))
    # What was typed stays in the boxes.
    assert 'name="cond-1-value" value="abc"' in html


def test_try_without_saving_shows_matches_among_recent_tickets(db, client, login, boss, make_ticket):
    hit = make_ticket(subject="帳票の印刷ができない")
    make_ticket(subject="ログインできない")
    login(boss)
    response = client.post("/agent/automation/new", data=_form(**{
        "cond-0-field": "text", "cond-0-op": "contains", "cond-0-value": "印刷",
        "act-0-kind": "set_priority", "act-0-value": "P1", "dry_run": "1"}))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "当てはまるのは 1 件です" in html and hit.ref in html and "優先度 P3 → P1" in html
    assert db.session.scalar(select(func.count()).select_from(AutomationRule)) == 0
    assert db.session.get(Ticket, hit.id).priority == "P3"


def test_dry_run_page_of_a_saved_rule(db, client, login, boss, make_ticket):
    ticket = make_ticket(subject="納品の確認")
    rule = service.save_rule(db.session, Actor(boss.id, boss.email), name="納品タグ", trigger="updated",
                             interval_minutes=None, conditions=[{"field": "text", "op": "contains", "value": "納品"}],
                             actions=[{"kind": "add_tag", "value": "delivery"}])
    login(boss)
    html = client.get(f"/agent/automation/{rule.id}/dry-run").get_data(as_text=True)
    assert ticket.ref in html and "タグ delivery を追加" in html


def test_order_on_off_and_delete_are_audited(db, client, login, boss):
    actor = Actor(boss.id, boss.email)
    a = service.save_rule(db.session, actor, name="A", trigger="created", interval_minutes=None, conditions=[],
                          actions=[{"kind": "add_tag", "value": "a"}])
    b = service.save_rule(db.session, actor, name="B", trigger="created", interval_minutes=None, conditions=[],
                          actions=[{"kind": "add_tag", "value": "b"}])
    login(boss)
    assert client.post(f"/agent/automation/{b.id}/move", data={"direction": "up"}).status_code == 302
    assert [r.name for r in service.active_rules(db.session, "created")] == ["B", "A"]
    assert client.post(f"/agent/automation/{b.id}/move", data={"direction": "down"}).status_code == 302
    assert [r.name for r in service.active_rules(db.session, "created")] == ["A", "B"]
    assert client.post(f"/agent/automation/{a.id}/active", data={"active": "0"}).status_code == 302
    assert [r.name for r in service.active_rules(db.session, "created")] == ["B"]
    assert client.post(f"/agent/automation/{a.id}/delete").status_code == 302
    assert db.session.get(AutomationRule, a.id) is None
    assert [len(_audit(db, k, a.id, b.id)) for k in ("automation_rule.moved", "automation_rule.disabled",
                                         "automation_rule.deleted")] == [2, 1, 1]
    assert client.get(f"/agent/automation/{a.id}").status_code == 404
    assert client.post("/agent/automation/999999/move", data={"direction": "up"}).status_code == 404


def test_pages_in_english(db, client, login, make_user):
    boss = make_user(roles="supervisor")
    login(boss)
    client.post("/lang", data={"lang": "en"})
    from flask_babel import refresh

    refresh()  # the test holds one app context: forget the locale flask-babel cached in it
    html = client.get("/agent/automation/new").get_data(as_text=True)
    assert "Automation rules" in html and "When a ticket is created" in html and "Conditions" in html
    assert "条件" not in html and "操作" not in html
    response = client.post("/agent/automation/new", data=_form(**{"act-0-kind": "set_priority", "act-0-value": "P9"}))
    assert "Enter a priority from P1 to P4." in response.get_data(as_text=True)
