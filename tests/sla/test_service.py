"""SLA clock on real tickets: due dates, priority change, pending pause, sweep idempotency, escalation."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from helpdesk.audit import Actor
from helpdesk.notify.models import Outbox
from helpdesk.sla import service as sla
from helpdesk.sla.calendar import TOKYO
from helpdesk.sla.models import SlaClock
from helpdesk.tickets import service as tickets


def jst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


@pytest.fixture
def supervisor(make_user):
    return make_user(roles="supervisor", email="sv@helpdesk.example.jp", name="監督 花子")


def test_due_dates_at_creation_skip_the_holiday(make_ticket):
    # Monday 2026-11-02 17:00, P3 defaults (240 / 1620 business minutes); 11-03 is 文化の日.
    t = make_ticket(created_at=jst(2026, 11, 2, 17))
    assert t.first_response_due_at == jst(2026, 11, 4, 12)
    # 1620 min: 60 on Mon, 540 Wed, Thu, 480 Fri → Fri 17:00.
    assert t.resolution_due_at == jst(2026, 11, 6, 17)


def test_policy_overrides_by_role_and_category(db, make_ticket, make_org, make_user):
    admin = Actor.system("test")
    sla.save_policy(db.session, admin, priority="P3", first_response_minutes=120, resolution_minutes=600)
    sla.save_policy(db.session, admin, priority="P3", role="wholesaler", first_response_minutes=60,
                    resolution_minutes=300)
    sla.save_policy(db.session, admin, priority="P3", role="wholesaler", category_code="delivery",
                    first_response_minutes=30, resolution_minutes=120)
    start = jst(2026, 10, 5, 9)
    clinic = make_ticket(org=make_org(kind="clinic"), created_at=start)
    assert clinic.first_response_due_at == jst(2026, 10, 5, 11)
    wholesaler = make_org(kind="wholesaler")
    w = make_ticket(org=wholesaler, created_at=start)
    assert w.first_response_due_at == jst(2026, 10, 5, 10)
    wd = make_ticket(org=wholesaler, created_at=start, category="delivery")
    assert wd.first_response_due_at == jst(2026, 10, 5, 9, 30)
    assert wd.resolution_due_at == jst(2026, 10, 5, 11)
    with pytest.raises(sla.SlaError):
        sla.save_policy(db.session, admin, priority="P3", first_response_minutes=120, resolution_minutes=60)


def test_priority_change_recomputes_from_the_same_start(db, make_ticket, agent):
    t = make_ticket(created_at=jst(2026, 10, 5, 9))
    assert t.resolution_due_at == jst(2026, 10, 7, 18)  # P3: 1620 min = 3 days
    tickets.update_fields(db.session, t.id, Actor(agent.id, agent.email), priority="P1")
    assert t.first_response_due_at == jst(2026, 10, 5, 9, 30)
    assert t.resolution_due_at == jst(2026, 10, 5, 13)
    tickets.update_fields(db.session, t.id, Actor(agent.id, agent.email), priority="P4")
    assert t.resolution_due_at == jst(2026, 10, 9, 18)  # 2700 min = 5 days


def test_pending_pauses_the_clock_and_shifts_due_dates(db, make_ticket):
    t = make_ticket(created_at=jst(2026, 10, 5, 9))
    before = t.resolution_due_at
    # Pending from Monday 10:00 to Tuesday 12:00 = 8 h + 3 h = 11 business hours (660 min).
    t.status = "pending"
    sla.on_status_changed(db.session, t, "open", "pending", at=jst(2026, 10, 5, 10))
    assert t.sla_paused_at == jst(2026, 10, 5, 10)
    state, left = sla.sla_state(t, now=jst(2026, 10, 9, 9))  # long after: frozen while pending
    assert state != "breached"
    t.status = "open"
    sla.on_status_changed(db.session, t, "pending", "open", at=jst(2026, 10, 6, 12))
    assert t.sla_paused_at is None
    assert db.session.get(SlaClock, t.id).paused_minutes == 660
    assert sla.get_calendar(db.session).business_minutes_between(before, t.resolution_due_at) == 660
    # A second pause adds up.
    t.status = "pending"
    sla.on_status_changed(db.session, t, "open", "pending", at=jst(2026, 10, 6, 17))
    t.status = "open"
    sla.on_status_changed(db.session, t, "pending", "open", at=jst(2026, 10, 7, 9, 30))  # 60 + 30
    assert db.session.get(SlaClock, t.id).paused_minutes == 750


def test_pending_through_the_service_stamps_the_pause(db, make_ticket, agent):
    t = make_ticket()
    tickets.change_status(db.session, t.id, "pending", Actor(agent.id, agent.email))
    assert t.sla_paused_at is not None
    tickets.change_status(db.session, t.id, "open", Actor(agent.id, agent.email))
    assert t.sla_paused_at is None
    tickets.change_status(db.session, t.id, "resolved", Actor(agent.id, agent.email))
    assert db.session.get(SlaClock, t.id).stopped_at is not None


def test_sweep_marks_notifies_once_and_is_idempotent(db, make_ticket, agent, supervisor):
    actor = Actor(agent.id, agent.email)
    late = make_ticket(created_at=jst(2026, 10, 5, 9), subject="配送が届かない")
    tickets.assign(db.session, late.id, agent.id, Actor.system("test"))
    risky = make_ticket(created_at=jst(2026, 10, 5, 9))
    tickets.add_comment(db.session, risky.id, "確認します", actor)  # first response given
    fine = make_ticket(created_at=jst(2026, 10, 5, 9))
    tickets.add_comment(db.session, fine.id, "確認します", actor)
    tickets.update_fields(db.session, fine.id, actor, priority="P4")
    # P3 from Mon 09:00: resolution due Wed 18:00, at risk from 75 % (1215 min → Wed 11:15).
    # late has no first response (due Mon 13:00) → breached; fine is P4 (at risk from Thu 15:45).
    now = jst(2026, 10, 7, 12)
    before = db.session.scalar(select(func.count()).select_from(Outbox))
    first = sla.sweep(db.session, now=now)
    assert late.id in first.breached and late.id not in first.at_risk
    assert risky.id in first.at_risk
    assert fine.id not in first.breached + first.at_risk
    db.session.expire_all()
    assert db.session.get(type(late), late.id).sla_state == "breached"
    assert db.session.get(type(risky), risky.id).sla_state == "at_risk"
    mails = db.session.scalars(select(Outbox).where(Outbox.purpose.like("sla.%"))).all()
    recipients = {(m.purpose, m.recipient) for m in mails}
    assert ("sla.breached", agent.email) in recipients
    assert ("sla.breached", supervisor.email) in recipients
    assert ("sla.at_risk", supervisor.email) in recipients
    assert all(m.dedupe_key for m in mails)
    single = next(m for m in mails if m.purpose == "sla.breached" and m.recipient == agent.email)
    assert single.subject.startswith(f"[{late.ref}]")
    after_first = db.session.scalar(select(func.count()).select_from(Outbox))
    assert after_first > before
    second = sla.sweep(db.session, now=now)
    assert second.breached == [] and second.at_risk == [] and second.mails == 0
    assert db.session.scalar(select(func.count()).select_from(Outbox)) == after_first
    # Later the at-risk ticket breaches: a new notice, once.
    third = sla.sweep(db.session, now=jst(2026, 10, 8, 9))
    assert third.breached == [risky.id]
    assert sla.sweep(db.session, now=jst(2026, 10, 8, 9)).mails == 0


def test_pending_tickets_are_not_swept(db, make_ticket, agent):
    t = make_ticket(created_at=jst(2026, 10, 5, 9))
    tickets.change_status(db.session, t.id, "pending", Actor(agent.id, agent.email))
    result = sla.sweep(db.session, now=jst(2026, 12, 1, 12))
    assert t.id not in result.breached + result.at_risk


def test_auto_escalation_per_policy(db, make_ticket, supervisor):
    sla.save_policy(db.session, Actor.system("test"), priority="P1", first_response_minutes=15,
                    resolution_minutes=60, auto_escalate=True)
    t = make_ticket(created_at=jst(2026, 10, 5, 9), priority="P1")
    other = make_ticket(created_at=jst(2026, 10, 5, 9), priority="P2")
    result = sla.sweep(db.session, now=jst(2026, 10, 5, 12))
    assert set(result.breached) >= {t.id, other.id}
    assert result.escalated == [t.id]
    db.session.expire_all()
    assert db.session.get(type(t), t.id).tier == "L2"
    assert db.session.get(type(t), t.id).status == "escalated"
    assert db.session.get(type(other), other.id).tier == "L1"
    assert sla.sweep(db.session, now=jst(2026, 10, 5, 13)).escalated == []


def test_sla_state_badge(db, make_ticket):
    t = make_ticket(created_at=jst(2026, 10, 5, 9), priority="P2")  # FR 60, res 540
    cal = sla.get_calendar(db.session)
    assert sla.sla_state(t, now=jst(2026, 10, 5, 9, 10), calendar=cal) == ("ok", 50)
    state, left = sla.sla_state(t, now=jst(2026, 10, 5, 9, 50), calendar=cal)
    assert state == "at_risk" and left == 10
    state, left = sla.sla_state(t, now=jst(2026, 10, 5, 11), calendar=cal)
    assert state == "breached" and left == -60


def test_closed_day_moves_new_due_dates(db, make_ticket):
    sla.add_closed_day(db.session, dt.date(2026, 10, 6), "システムメンテナンス", Actor.system("test"))
    t = make_ticket(created_at=jst(2026, 10, 5, 17), priority="P2")  # 540 min: 60 today, 480 on 10-07
    assert t.resolution_due_at == jst(2026, 10, 7, 17)
    with pytest.raises(sla.SlaError):
        sla.add_closed_day(db.session, dt.date(2026, 10, 6), "", Actor.system("test"))


def test_compliance_per_role(db, make_ticket, make_org, agent):
    actor = Actor(agent.id, agent.email)
    clinic = make_org(kind="clinic")
    on_time = make_ticket(org=clinic, created_at=jst(2026, 10, 5, 9))
    tickets.add_comment(db.session, on_time.id, "回答です", actor)
    on_time.first_response_at = jst(2026, 10, 5, 9, 30)
    on_time.resolved_at = jst(2026, 10, 5, 15)
    late = make_ticket(org=clinic, created_at=jst(2026, 10, 5, 9))
    late.first_response_at = jst(2026, 10, 6, 9)
    db.session.commit()
    # As of 10-06 10:00 the late ticket's resolution (due 10-07 18:00) is not due yet: not counted.
    rows = sla.compliance(db.session, *sla.month_bounds("2026-10"), as_of=jst(2026, 10, 6, 10))
    row = next(r for r in rows if r["role"] == "clinic")
    assert row["tickets"] == 2
    assert row["first_response_met"] == 1 and row["first_response_counted"] == 2
    assert row["first_response_pct"] == 50.0
    assert row["resolution_pct"] == 100.0
    # Once it is due and still open, it is a miss.
    rows = sla.compliance(db.session, *sla.month_bounds("2026-10"), as_of=jst(2026, 10, 8, 9))
    row = next(r for r in rows if r["role"] == "clinic")
    assert (row["resolution_met"], row["resolution_counted"]) == (1, 2)


def test_month_bounds_refuses_garbage():
    with pytest.raises(sla.SlaError):
        sla.month_bounds("2026/10")
    start, end = sla.month_bounds("2026-12")
    assert start == jst(2026, 12, 1) and end == jst(2027, 1, 1)
