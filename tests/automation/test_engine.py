"""Automation rules (issue 17.1): triggers, conditions, actions, order, switching off, loop protection,
time-based idempotency and the transaction — on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select, update

from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.automation import jobs, service
from helpdesk.automation.models import AutomationRule, AutomationRun
from helpdesk.common import utcnow
from helpdesk.notify.models import Outbox
from helpdesk.tickets import service as tickets
from helpdesk.tickets.models import Comment, Ticket, TicketEvent


@pytest.fixture
def boss(make_user):
    return make_user(roles="supervisor", email="boss@helpdesk.example.jp", name="主任 花子")


@pytest.fixture
def rule(db, boss):
    """Save a rule the way the supervisor's form does (validated, audited)."""

    def make(trigger="created", conditions=(), actions=({"kind": "add_tag", "value": "auto"},), name=None,
             interval=None, active=True):
        return service.save_rule(db.session, Actor(boss.id, boss.email), name=name or f"ルール {trigger}",
                                 trigger=trigger, interval_minutes=interval, conditions=list(conditions),
                                 actions=list(actions), active=active)

    return make


def _tags(db, ticket_id):
    db.session.expire_all()
    return db.session.get(Ticket, ticket_id).tag_names


def _runs(db, rule_id):
    return db.session.scalar(select(func.count()).select_from(AutomationRun).where(AutomationRun.rule_id == rule_id))


# --- triggers -----------------------------------------------------------------------------------

def test_created_trigger_acts_once_with_an_actor_naming_the_rule(db, rule, make_ticket):
    r = rule("created", actions=[{"kind": "set_priority", "value": "P1"}, {"kind": "add_tag", "value": "至急"}],
             name="新規は至急")
    ticket = make_ticket()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.priority == "P1" and ticket.tag_names == ["至急"]
    events = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.kind.in_(("priority", "tag")))).all()
    assert {(e.kind, e.actor_label) for e in events} == {("priority", "自動ルール「新規は至急」"),
                                                         ("tag", "自動ルール「新規は至急」")}
    run = db.session.scalars(select(AutomationRun).where(AutomationRun.rule_id == r.id)).one()
    assert run.trigger_key == "created" and [o["done"] for o in run.outcome] == [True, True]
    fired = db.session.scalars(select(AuditLog).where(AuditLog.action == "automation.fired",
                                                      AuditLog.object_id == str(ticket.id))).one()
    assert fired.object_id == str(ticket.id) and fired.detail["rule_id"] == r.id


def test_updated_trigger_fires_on_a_change_but_not_while_the_ticket_is_created(db, rule, make_ticket, agent):
    r = rule("updated", actions=[{"kind": "add_tag", "value": "touched"}])
    ticket = make_ticket()
    assert _tags(db, ticket.id) == [] and _runs(db, r.id) == 0
    tickets.update_fields(db.session, ticket.id, Actor(agent.id, agent.email), priority="P2", category="login",
                          assignee_id=agent.id)
    assert _tags(db, ticket.id) == ["touched"]
    assert _runs(db, r.id) == 1  # three events in one save: the rule acts once


def test_reply_trigger_only_for_the_requester_side(db, rule, make_ticket, agent):
    r = rule("reply", actions=[{"kind": "add_tag", "value": "customer-replied"}])
    ticket = make_ticket()
    tickets.add_comment(db.session, ticket.id, "確認します。", Actor(agent.id, agent.email))
    assert _tags(db, ticket.id) == [] and _runs(db, r.id) == 0
    tickets.add_comment(db.session, ticket.id, "note", Actor(agent.id, agent.email), public=False)
    assert _runs(db, r.id) == 0
    requester = db.session.get(Ticket, ticket.id).requester
    comment = tickets.add_comment(db.session, ticket.id, "まだログインできません", Actor(requester.id, requester.email))
    assert _tags(db, ticket.id) == ["customer-replied"]
    assert db.session.scalars(select(AutomationRun.trigger_key).where(AutomationRun.rule_id == r.id)).all() == \
        [f"c{comment.id}"]


def test_timed_rule_acts_on_stale_tickets_once_and_a_second_pass_changes_nothing(db, rule, make_ticket):
    r = rule("timed", interval=60, conditions=[{"field": "hours_since_update", "op": "gte", "value": "8"},
                                               {"field": "status", "op": "is", "value": "新規"}],
             actions=[{"kind": "set_priority", "value": "P2"}, {"kind": "add_note", "text": "{ref} は8時間更新なし"}])
    stale, fresh, closed = make_ticket(), make_ticket(), make_ticket()
    old = utcnow() - dt.timedelta(hours=9)
    db.session.execute(update(Ticket).where(Ticket.id.in_([stale.id, closed.id])).values(updated_at=old))
    db.session.execute(update(Ticket).where(Ticket.id == closed.id).values(status="closed"))
    db.session.commit()
    first = jobs.run_timed(db.session)
    assert first["applied"] == 1 and first["errors"] == 0
    db.session.expire_all()
    assert db.session.get(Ticket, stale.id).priority == "P2"
    assert db.session.get(Ticket, fresh.id).priority == "P3" and db.session.get(Ticket, closed.id).priority == "P3"
    notes = db.session.scalars(select(Comment).where(Comment.ticket_id == stale.id)).all()
    assert [(n.body, n.is_public, n.via) for n in notes] == [(f"{stale.ref} は8時間更新なし", False, "automation")]
    # Not due again within its interval; forced, or once it is due, it still acts once per ticket.
    assert jobs.run_timed(db.session)["rules"] == 0
    db.session.execute(update(Ticket).where(Ticket.id == stale.id).values(updated_at=old, priority="P3"))
    db.session.commit()
    second = jobs.run_timed(db.session, force=True)
    assert second["rules"] == 1 and second["applied"] == 0
    later = jobs.run_timed(db.session, now=utcnow() + dt.timedelta(minutes=61))
    assert later["rules"] == 1 and later["applied"] == 0
    db.session.expire_all()
    assert db.session.get(Ticket, stale.id).priority == "P3"  # not set again
    assert _runs(db, r.id) == 1
    assert len(db.session.scalars(select(Comment).where(Comment.ticket_id == stale.id)).all()) == 1


def test_timed_pass_narrows_in_sql_and_still_checks_every_condition(db, rule, make_org, make_user, make_ticket):
    mine, other = make_org(code="131016"), make_org(code="271004")
    r = rule("timed", interval=5, conditions=[{"field": "organisation", "op": "is", "value": "131016"},
                                              {"field": "text", "op": "contains", "value": "100%_印刷"},
                                              {"field": "tag", "op": "has_not", "value": "done"},
                                              {"field": "category", "op": "is_not", "value": "password"}])
    hit = make_ticket(org=mine, requester=make_user(org=mine), subject="100%_印刷できない")
    make_ticket(org=mine, requester=make_user(org=mine), subject="100x印刷できない")  # % and _ are not wildcards
    make_ticket(org=mine, requester=make_user(org=mine), subject="100%_印刷できない", tags=["done"])
    make_ticket(org=mine, requester=make_user(org=mine), subject="100%_印刷できない", category="password")
    make_ticket(org=other, requester=make_user(org=other), subject="100%_印刷できない")
    result = jobs.run_timed(db.session)
    assert result["applied"] == 1 and _runs(db, r.id) == 1
    assert db.session.scalars(select(AutomationRun.ticket_id).where(AutomationRun.rule_id == r.id)).all() == [hit.id]


def test_cli_run_timed_prints_figures(app, db, rule, make_ticket):
    rule("timed", interval=5, conditions=[{"field": "priority", "op": "is", "value": "P3"}])
    ticket = make_ticket()
    result = app.test_cli_runner().invoke(args=["automation", "run-timed"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["applied"] == 1 and figures["rules"] == 1
    assert _tags(db, ticket.id) == ["auto"]
    again = json.loads(app.test_cli_runner().invoke(args=["automation", "run-timed", "--all"]).output)
    assert again["applied"] == 0


# --- conditions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field,op,value,hit", [
    ("role", "is", "医療機関", True), ("role", "is_not", "clinic", False), ("role", "is", "自治体", False),
    ("category", "is", "login", True), ("category", "is", "パスワード", False), ("category", "is_not", "password", True),
    ("priority", "is", "P2", True), ("priority", "is_not", "P2", False),
    ("channel", "is", "電話", True), ("channel", "is", "web", False),
    ("status", "is", "新規", True), ("status", "is_not", "new", False),
    ("tag", "has", "lgwan", True), ("tag", "has_not", "lgwan", False), ("tag", "has", "other", False),
    ("text", "contains", "ＬＯＧＩＮ画面", True), ("text", "not_contains", "印刷", True), ("text", "contains", "印刷", False),
    ("sla_state", "is", "正常", True), ("sla_state", "is", "breached", False),
    ("hours_since_update", "lt", "1", True), ("hours_since_update", "gte", "1", False),
])
def test_each_condition_kind_matches_or_not(db, rule, make_org, make_user, make_ticket, field, op, value, hit):
    rule("created", conditions=[{"field": field, "op": op, "value": value}])
    org = make_org(kind="clinic")
    ticket = make_ticket(org=org, requester=make_user(org=org), subject="login画面に入れない", channel="phone",
                         category="login", priority="P2", tags=["LGWAN"])
    assert (_tags(db, ticket.id) == ["auto", "lgwan"]) is hit


def test_organisation_condition_by_code(db, rule, make_org, make_user, make_ticket):
    mine, other = make_org(code="131016"), make_org(code="271004")
    rule("created", conditions=[{"field": "organisation", "op": "is", "value": "131016"}])
    a = make_ticket(org=mine, requester=make_user(org=mine))
    b = make_ticket(org=other, requester=make_user(org=other))
    assert _tags(db, a.id) == ["auto"] and _tags(db, b.id) == []


def test_sla_state_breached_matches_a_breached_ticket(db, rule, make_ticket):
    r = rule("timed", interval=5, conditions=[{"field": "sla_state", "op": "is", "value": "超過"}])
    late, ok = make_ticket(), make_ticket()
    db.session.execute(update(Ticket).where(Ticket.id == late.id).values(sla_state="breached"))
    db.session.commit()
    assert jobs.run_timed(db.session)["applied"] == 1
    assert _tags(db, late.id) == ["auto"] and _tags(db, ok.id) == [] and _runs(db, r.id) == 1


# --- actions ------------------------------------------------------------------------------------

def test_assign_agent_status_category_group_actions(db, rule, make_ticket, make_user):
    specialist = make_user(roles="specialist", email="l2@helpdesk.example.jp", name="専門 太郎")
    rule("created", actions=[{"kind": "set_category", "value": "パスワード"},
                             {"kind": "assign_agent", "value": "L2@helpdesk.example.jp"},
                             {"kind": "assign_group", "value": "L2"},
                             {"kind": "set_status", "value": "回答待ち"}])
    ticket = make_ticket()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.category.code == "password" and ticket.assignee_id == specialist.id
    assert ticket.tier == "L2" and ticket.status == "pending"
    reason = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.kind == "escalation")).one().detail["reason"]
    assert "自動ルール" in reason


def test_a_refused_action_is_recorded_and_the_others_still_run(db, rule, make_ticket):
    r = rule("created", actions=[{"kind": "set_status", "value": "解決済み"}, {"kind": "set_status", "value": "回答待ち"},
                                 {"kind": "add_tag", "value": "after"}])
    ticket = make_ticket()
    outcome = db.session.scalars(select(AutomationRun.outcome).where(AutomationRun.rule_id == r.id)).one()
    # new → resolved is allowed, resolved → pending is not: refused in words, the tag still added.
    assert [o["done"] for o in outcome] == [True, False, True]
    assert "変更できません" in outcome[1]["text"]
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "resolved" and _tags(db, ticket.id) == ["after"]


def test_send_mail_action_goes_through_the_outbox_to_a_real_smtp_peer(db, app, rule, make_org, make_user,
                                                                      make_ticket, smtp_sink):
    rule("created", actions=[{"kind": "send_mail", "value": "依頼者", "subject": "{ref} 受付のご案内",
                              "text": "{requester_name} 様、{organisation_name} のお問い合わせを確認しています。"}])
    org = make_org(name="札幌市")
    requester = make_user(org=org, name="山田 花子", email="hanako@city.example.jp")
    ticket = make_ticket(org=org, requester=requester)
    row = db.session.scalar(select(Outbox).where(Outbox.purpose == "automation.mail"))
    assert row.recipient == "hanako@city.example.jp" and row.subject == f"[{ticket.ref}] {ticket.ref} 受付のご案内"
    db.session.refresh(row)
    assert row.state == "sent"  # delivered after the commit (in-process jobs in tests)
    sent = [m for m in smtp_sink.messages if "受付のご案内" in str(m["Subject"])]
    assert len(sent) == 1
    body = sent[0].get_body(("plain",)).get_content()
    assert "山田 花子 様、札幌市 のお問い合わせを確認しています。" in body and ticket.ref in body


@pytest.fixture
def allow_loopback(app):
    saved = app.config.get("WEBHOOK_ALLOWED_HOSTS")
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ["127.0.0.1"]
    yield
    app.config["WEBHOOK_ALLOWED_HOSTS"] = saved


def test_webhook_action_is_signed_and_delivered_to_a_real_receiver(db, rule, make_ticket, allow_loopback):
    from helpdesk.api import service as api_service
    from helpdesk.api import webhooks
    from tests.api.test_webhooks import Receiver

    with Receiver() as receiver:
        sub = api_service.create_subscription(db.session, name="基幹連携", url=receiver.url, events=["problem.created"],
                                              actor=Actor.system("t"), allowed_hosts=["127.0.0.1"])
        r = rule("created", actions=[{"kind": "webhook", "value": "基幹連携"}])
        ticket = make_ticket()
        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        assert webhooks.verify(sub.secret, request["body"], request["headers"]["X-Helpdesk-Signature"])
        payload = json.loads(request["body"])
        assert payload["event"] == "automation.rule" and payload["data"]["ref"] == ticket.ref
        assert payload["data"]["rule"] == {"id": r.id, "name": r.name, "trigger": "created"}


def test_note_action_is_internal_and_never_mailed(db, rule, make_ticket):
    rule("created", actions=[{"kind": "add_note", "text": "優先対応: {subject}"}])
    ticket = make_ticket(subject="納品が届かない")
    note = db.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id)).one()
    assert note.is_public is False and note.body == "優先対応: 納品が届かない" and note.author_id is None
    assert db.session.scalar(select(func.count()).select_from(Outbox).where(
        Outbox.ticket_id == ticket.id, Outbox.purpose == "ticket.public_reply")) == 0
    assert "優先対応" in db.session.get(Ticket, ticket.id).search_text


# --- order, switching off, loop protection, transaction --------------------------------------

def test_rules_run_in_order_and_a_later_rule_sees_the_earlier_change(db, boss, rule, make_ticket):
    first = rule("created", name="P1にする", actions=[{"kind": "set_priority", "value": "P1"}])
    second = rule("created", name="P1ならタグ", conditions=[{"field": "priority", "op": "is", "value": "P1"}],
                  actions=[{"kind": "add_tag", "value": "p1"}])
    assert _tags(db, make_ticket().id) == ["p1"]
    # Reversed: the tag rule looks first (priority still P3), then the priority changes.
    service.move_rule(db.session, Actor(boss.id, boss.email), second.id, "up")
    assert [r.id for r in service.active_rules(db.session, "created")] == [second.id, first.id]
    ticket = make_ticket()
    assert _tags(db, ticket.id) == [] and db.session.get(Ticket, ticket.id).priority == "P1"


def test_disabled_rule_does_nothing(db, boss, rule, make_ticket):
    r = rule("created", active=False)
    assert _tags(db, make_ticket().id) == []
    service.set_active(db.session, Actor(boss.id, boss.email), r.id, True)
    assert _tags(db, make_ticket().id) == ["auto"]


def test_a_rule_whose_action_matches_itself_fires_once(db, rule, make_ticket, agent):
    # 'Updated' + no condition + an action that is itself an update: without protection this never ends.
    # 'other' comes first in the order: in the pass it does not match yet (P3); the rule below then sets P2,
    # and that change must not run 'other' (nor the rule itself) again.
    other = rule("updated", name="別ルール", conditions=[{"field": "priority", "op": "is", "value": "P2"}],
                 actions=[{"kind": "add_tag", "value": "p2"}])
    r = rule("updated", actions=[{"kind": "add_note", "text": "見ました"}, {"kind": "set_priority", "value": "P2"}])
    ticket = make_ticket()
    tickets.add_tag(db.session, ticket.id, "x", Actor(agent.id, agent.email))
    notes = db.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id)).all()
    assert [n.body for n in notes] == ["見ました"] and _runs(db, r.id) == 1
    # The rule's own change (P2) did not trigger the other rule either; an agent's next change does.
    assert _tags(db, ticket.id) == ["x"] and _runs(db, other.id) == 0
    tickets.add_tag(db.session, ticket.id, "y", Actor(agent.id, agent.email))
    assert _tags(db, ticket.id) == ["p2", "x", "y"] and _runs(db, r.id) == 2


def test_the_same_occurrence_never_gets_a_rule_twice(db, rule, make_ticket):
    r = rule("created")
    ticket = make_ticket()
    assert service.apply_rule(db.session, db.session.get(AutomationRule, r.id), ticket, "created") is None
    assert _runs(db, r.id) == 1


def test_a_rolled_back_change_leaves_no_rule_effect(db, rule, make_ticket, agent):
    r = rule("updated", actions=[{"kind": "add_tag", "value": "auto"}, {"kind": "add_note", "text": "メモ"}])
    ticket = make_ticket()
    tickets.update_fields(db.session, ticket.id, Actor(agent.id, agent.email), priority="P1", commit=False)
    assert "auto" in db.session.get(Ticket, ticket.id).tag_names  # applied inside the transaction…
    db.session.rollback()
    assert _tags(db, ticket.id) == [] and _runs(db, r.id) == 0  # …and gone with it
    assert db.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id)).all() == []
    assert db.session.get(Ticket, ticket.id).priority == "P3"
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "automation.fired", AuditLog.object_id == str(ticket.id))) == 0
    # The next transaction starts clean: the same change now commits with the rule's effects.
    tickets.update_fields(db.session, ticket.id, Actor(agent.id, agent.email), priority="P1")
    assert _tags(db, ticket.id) == ["auto"] and _runs(db, r.id) == 1


def test_automatic_assignment_still_works_after_created_rules(db, boss, rule, make_ticket, make_user):
    from helpdesk.tickets import assignment

    a = make_user(roles="agent", name="受付 一郎")
    assignment.set_shift(db.session, Actor(a.id, a.email), a.id, True)
    assignment.save_rule(db.session, Actor(boss.id, boss.email), name="全件", category_id=None, role=None,
                         mode="round_robin", agent_ids=[a.id])
    upd = rule("updated", name="更新")
    rule("created", actions=[{"kind": "set_priority", "value": "P2"}])
    ticket = make_ticket()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == a.id and ticket.priority == "P2"
    assert _runs(db, upd.id) == 0  # the automatic assignment is part of the creation


# --- dry run --------------------------------------------------------------------------------------

def test_dry_run_lists_matches_among_the_last_100_and_writes_nothing(db, rule, make_ticket):
    r = rule("created", active=False, conditions=[{"field": "text", "op": "contains", "value": "印刷"}],
             actions=[{"kind": "set_priority", "value": "P1"}, {"kind": "add_tag", "value": "print"}])
    hit = make_ticket(subject="帳票の印刷ができない")
    make_ticket(subject="ログインできない")
    rows = service.dry_run(db.session, trigger=r.trigger_on, conditions=r.conditions, actions=r.actions)
    matched = [p for p in rows if p.matched]
    assert [p.ticket.id for p in matched] == [hit.id]
    assert matched[0].changes == ["優先度 P3 → P1", "タグ print を追加"]
    db.session.expire_all()
    assert db.session.get(Ticket, hit.id).priority == "P3" and _runs(db, r.id) == 0
    assert len(service.dry_run(db.session, trigger="created", conditions=[], actions=[], limit=1)) == 1


# --- validation --------------------------------------------------------------------------------

def test_validation_says_what_is_wrong_next_to_each_row(db, boss):
    with pytest.raises(service.RuleError) as err:
        service.save_rule(db.session, Actor(boss.id, boss.email), name="", trigger="timed", interval_minutes=1,
                          conditions=[{"field": "priority", "op": "contains", "value": "P1", "row": 0},
                                      {"field": "hours_since_update", "op": "gte", "value": "八", "row": 2}],
                          actions=[{"kind": "assign_agent", "value": "nobody@example.jp", "row": 1},
                                   {"kind": "send_mail", "value": "依頼者", "subject": "", "text": "{oops}", "row": 3}])
    errors = err.value.field_errors
    assert errors["name"] == "ルール名を入力してください。"
    assert "5〜10080" in errors["interval_minutes"]
    assert "比べ方" in errors["cond-0-op"] and "数字" in errors["cond-2-value"]
    assert "ログインID" in errors["act-1-value"]
    assert errors["act-3-subject"] == "メールの件名を入力してください。" and "{oops}" in errors["act-3-text"]
    assert db.session.scalar(select(func.count()).select_from(AutomationRule)) == 0


def test_ticket_page_names_a_rule_note_in_words(db, rule, make_ticket, client, login, agent):
    rule("created", actions=[{"kind": "add_note", "text": "自動メモ: {subject}"}])
    ticket = make_ticket(subject="配送先を変更したい")
    login(agent)
    html = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert "自動メモ: 配送先を変更したい" in html
    assert "自動ルール（システム）" in html and "（不明）" not in html
    assert "· automation" not in html  # no internal code shown as the source
