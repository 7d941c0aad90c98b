"""Automatic assignment of new tickets (issue 15.10).

A supervisor keeps a short ordered list of rules (`assignment_rules`): each names a category and/or a
requester role (None = any), a group of agents and a mode. When a ticket is created without an
assignee, the first active rule that matches it picks one agent of its group who is **on shift now**
(`agent_shifts.on_shift`, set by the agent on /agent/shift or by a supervisor) and whose account is an
enabled staff account; nobody eligible → the ticket stays unassigned.

Modes:
  round_robin    the next eligible agent after the rule's `last_agent_id` (ordered by user id)
  least_loaded   the eligible agent with the fewest active (new/open/pending/escalated) assigned tickets;
                 ties go round-robin after `last_agent_id`

The rule row is read with SELECT … FOR UPDATE (PostgreSQL; SQLite serialises writers anyway and the
ticket INSERT already holds its write lock), so concurrent creations matching one rule take turns:
the second waits for the first's commit, then sees its `last_agent_id` and, under READ COMMITTED, its
newly assigned ticket in the load counts.

The assignment itself is an ordinary assignee change (`service._assign`: the timeline event, new → open,
its effects and the live-queue note) by the system actor 「自動割当」, plus an audit row.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from helpdesk import audit
from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.i18n import lazy_join
from helpdesk.tickets.models import OPEN_STATUSES, AgentShift, AssignmentRule, Ticket
from helpdesk.common import ORG_KINDS

MODES = ("round_robin", "least_loaded")


class AssignmentError(Exception):
    """A refused rule change; `field_errors` maps form field names to plain messages."""

    def __init__(self, field_errors: dict[str, str]):
        super().__init__(lazy_join("; ", field_errors.values()))
        self.field_errors = field_errors


def parse_agent_ids(value: str | None) -> list[int]:
    return sorted({int(p) for p in (value or "").split(",") if p.strip().isdigit()})


def rule_matches(rule: AssignmentRule, ticket: Ticket) -> bool:
    return ((rule.category_id is None or rule.category_id == ticket.category_id)
            and (rule.role is None or rule.role == ticket.role))


def eligible_agents(session, agent_ids: list[int]) -> list[int]:
    """The ids among `agent_ids` of enabled staff accounts that are on shift now, ascending."""
    if not agent_ids:
        return []
    users = session.scalars(
        select(User).join(AgentShift, AgentShift.user_id == User.id)
        .where(User.id.in_(agent_ids), AgentShift.on_shift.is_(True), User.state != "disabled")
        .order_by(User.id)).all()
    return [u.id for u in users if u.is_staff and u.is_active]


def _after(ids: list[int], last: int | None) -> list[int]:
    """`ids` rotated so that the first is the one after `last` (cyclically)."""
    if last is None:
        return list(ids)
    later = [i for i in ids if i > last]
    return later + [i for i in ids if i <= last]


def active_load(session, agent_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(Ticket.assignee_id, func.count()).where(Ticket.assignee_id.in_(agent_ids),
                                                       Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.assignee_id)).all()
    load = {i: 0 for i in agent_ids}
    load.update({int(a): int(n) for a, n in rows})
    return load


def choose(session, rule: AssignmentRule) -> int | None:
    """The agent the (locked) rule gives its next ticket to, or None."""
    ids = eligible_agents(session, parse_agent_ids(rule.agent_ids))
    if not ids:
        return None
    order = _after(ids, rule.last_agent_id)
    if rule.mode == "least_loaded":
        load = active_load(session, ids)
        return min(order, key=lambda i: load[i])  # min keeps the first of equals: round-robin among ties
    return order[0]


def auto_assign(session, ticket: Ticket) -> int | None:
    """Called once from `effects.created`: assign a new unassigned ticket by the first matching rule."""
    if ticket.assignee_id is not None or ticket.status != "new":
        return None
    rules = session.scalars(select(AssignmentRule).where(AssignmentRule.active.is_(True))
                            .order_by(AssignmentRule.position, AssignmentRule.id)).all()
    rule = next((r for r in rules if rule_matches(r, ticket)), None)
    if rule is None:
        return None
    # Lock the rule row and read it afresh: concurrent creations take turns from here to their commit.
    rule = session.scalars(select(AssignmentRule).where(AssignmentRule.id == rule.id)
                           .with_for_update().execution_options(populate_existing=True)).one()
    agent_id = choose(session, rule)
    if agent_id is None:
        return None
    rule.last_agent_id = agent_id
    from helpdesk.tickets import service  # late: service imports effects, which imports this module

    actor = Actor.system("自動割当")
    service._assign(session, ticket, agent_id, actor)
    audit.record(session, actor, "ticket.auto_assigned", "ticket", ticket.id,
                 {"rule_id": rule.id, "rule": rule.name, "mode": rule.mode, "assignee_id": agent_id})
    return agent_id


# --- rules and shifts (the supervisor page, the agent's own shift page) -----------------------

def save_rule(session, actor: Actor, *, rule_id: int | None = None, name: str, category_id: int | None,
              role: str | None, mode: str, agent_ids: list[int], position: int = 0,
              active: bool = True) -> AssignmentRule:
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = _l("名前を入力してください。")
    if mode not in MODES:
        errors["mode"] = _l("割当方法を選んでください。")
    if role is not None and role not in ORG_KINDS:
        errors["role"] = _l("利用者の区分を選び直してください。")
    staff = {u.id for u in session.scalars(select(User).where(User.id.in_(agent_ids or [0]))) if u.is_staff}
    if not agent_ids:
        errors["agent_ids"] = _l("担当者を一人以上選んでください。")
    elif set(agent_ids) - staff:
        errors["agent_ids"] = _l("担当者に選べるのはヘルプデスクの担当者だけです。")
    if errors:
        raise AssignmentError(errors)
    rule = session.get(AssignmentRule, rule_id) if rule_id else AssignmentRule()
    if rule is None:
        raise AssignmentError({"name": _l("ルールが見つかりません。")})
    before = _rule_dict(rule) if rule_id else None
    rule.name, rule.category_id, rule.role, rule.mode = name[:100], category_id, role, mode
    rule.agent_ids, rule.position, rule.active = ",".join(map(str, sorted(set(agent_ids)))), position, active
    if rule.last_agent_id is not None and rule.last_agent_id not in agent_ids:
        rule.last_agent_id = None
    session.add(rule)
    session.flush()
    audit.record(session, actor, "assignment_rule.updated" if rule_id else "assignment_rule.created",
                 "assignment_rule", rule.id, {"before": before, "after": _rule_dict(rule)})
    session.commit()
    return rule


def set_rule_active(session, actor: Actor, rule_id: int, active: bool) -> AssignmentRule | None:
    rule = session.get(AssignmentRule, rule_id)
    if rule is None:
        return None
    rule.active = active
    audit.record(session, actor, "assignment_rule.enabled" if active else "assignment_rule.disabled",
                 "assignment_rule", rule.id, {"name": rule.name})
    session.commit()
    return rule


def _rule_dict(rule: AssignmentRule) -> dict:
    return {"name": rule.name, "category_id": rule.category_id, "role": rule.role, "mode": rule.mode,
            "agent_ids": rule.agent_ids, "position": rule.position, "active": rule.active}


def on_shift(session, user_id: int) -> bool:
    row = session.get(AgentShift, user_id)
    return bool(row and row.on_shift)


def shift_states(session, user_ids: list[int]) -> dict[int, bool]:
    if not user_ids:
        return {}
    rows = session.scalars(select(AgentShift).where(AgentShift.user_id.in_(user_ids))).all()
    states = {i: False for i in user_ids}
    states.update({r.user_id: r.on_shift for r in rows})
    return states


def set_shift(session, actor: Actor, user_id: int, value: bool) -> None:
    """Mark an agent on shift (available for automatic assignment) or absent; audited."""
    row = session.get(AgentShift, user_id)
    if row is None:
        row = AgentShift(user_id=user_id, on_shift=value, changed_at=utcnow())
        session.add(row)
    elif row.on_shift == value:
        return
    row.on_shift, row.changed_at = value, utcnow()
    audit.record(session, actor, "agent_shift.on" if value else "agent_shift.off", "user", user_id)
    session.commit()
