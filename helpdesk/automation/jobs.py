"""The time-based pass: every due 'timed' rule looks at the tickets matching its conditions, once each.

Run by `helpdesk automation run-timed` from cron (e.g. `*/5 * * * *`), or as the RQ job
`run_timed_rules` (`helpdesk automation run-timed --enqueue`, or any scheduler that enqueues it).
Idempotent: each (rule, ticket) is claimed in `automation_runs` with the key 'timed' before the rule
acts, so a second pass — or a concurrent one — never applies a rule to a ticket again. Each ticket is
its own transaction: a ticket changed concurrently by an agent (version conflict) is left for the next pass.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm.exc import StaleDataError

from helpdesk.accounts.models import Organisation
from helpdesk.automation import service
from helpdesk.automation.models import AutomationRule, AutomationRun
from helpdesk.common import utcnow
from helpdesk.text import normalize
from helpdesk.tickets.models import Category, Ticket, TicketTag

logger = logging.getLogger(__name__)

BATCH = 500
#: A cron run a little early still counts as due (cron every 5 min, rule every 5 min).
SLACK = dt.timedelta(seconds=60)


def _prefilter(stmt, conditions: list[dict], now: dt.datetime):
    """Narrow the candidates in SQL where a condition maps to a column; Python checks them all again."""
    columns = {"priority": Ticket.priority, "channel": Ticket.channel, "status": Ticket.status, "role": Ticket.role}
    for cond in conditions:
        field, op, value = cond["field"], cond["op"], cond["value"]
        if field in columns:
            col = columns[field]
            stmt = stmt.where(col == value if op == "is" else or_(col != value, col.is_(None)))
        elif field == "sla_state":
            col = func.coalesce(Ticket.sla_state, "ok")
            stmt = stmt.where(col == value if op == "is" else col != value)
        elif field == "hours_since_update":
            cutoff = now - dt.timedelta(hours=float(value))
            stmt = stmt.where(Ticket.updated_at <= cutoff if op == "gte" else Ticket.updated_at > cutoff)
        elif field == "category" and op == "is":
            stmt = stmt.where(Ticket.category_id == select(Category.id).where(Category.code == value)
                              .scalar_subquery())
        elif field == "tag":
            tagged = exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag == value)
            stmt = stmt.where(tagged if op == "has" else ~tagged)
        elif field == "organisation" and op == "is":
            stmt = stmt.where(Ticket.organisation_id.in_(select(Organisation.id).where(Organisation.code == value)))
        elif field == "text" and op == "contains":
            stmt = stmt.where(or_(Ticket.search_text.contains(normalize(str(value)), autoescape=True),
                                  Ticket.search_text == "", Ticket.search_text.is_(None)))  # Python reads subject+body
    return stmt


def due_rules(session, now: dt.datetime, force: bool = False) -> list[AutomationRule]:
    rules = service.active_rules(session, "timed")
    return [r for r in rules if force or r.last_run_at is None
            or r.last_run_at + dt.timedelta(minutes=r.interval_minutes or 0) <= now + SLACK]


def run_rule(session, rule_id: int, now: dt.datetime | None = None, limit: int = 10_000) -> dict:
    """One pass of one time-based rule; returns {"matched", "applied", "errors"} (committed per ticket)."""
    now = now or utcnow()
    rule = session.get(AutomationRule, rule_id)
    counts = {"matched": 0, "applied": 0, "errors": 0}
    if rule is None or not rule.active or rule.trigger_on != "timed":
        return counts
    conditions, last_id, seen = list(rule.conditions or ()), 0, 0
    while seen < limit:
        stmt = (select(Ticket.id).where(Ticket.status != "closed", Ticket.id > last_id,
                                        ~exists().where(AutomationRun.rule_id == rule_id,
                                                        AutomationRun.ticket_id == Ticket.id,
                                                        AutomationRun.trigger_key == "timed"))
                .order_by(Ticket.id).limit(BATCH))
        ids = session.scalars(_prefilter(stmt, conditions, now)).all()
        session.rollback()  # end the read; each ticket below is its own transaction
        if not ids:
            break
        for ticket_id in ids:
            last_id, seen = ticket_id, seen + 1
            rule = session.get(AutomationRule, rule_id)
            ticket = session.get(Ticket, ticket_id)
            if rule is None or ticket is None or not rule.active:
                session.rollback()
                continue
            try:
                if not service.matches(session, rule.conditions, ticket, now) or ticket.status == "closed":
                    session.rollback()
                    continue
                counts["matched"] += 1
                if service.apply_rule(session, rule, ticket, "timed") is not None:
                    counts["applied"] += 1
                session.commit()
            except StaleDataError:  # an agent changed the ticket meanwhile: the next pass looks again
                session.rollback()
                counts["errors"] += 1
            except Exception:
                session.rollback()
                counts["errors"] += 1
                logger.exception("automation rule %s failed on ticket %s", rule_id, ticket_id)
    rule = session.get(AutomationRule, rule_id)
    if rule is not None:
        rule.last_run_at = now
        session.commit()
    return counts


def run_timed(session, now: dt.datetime | None = None, force: bool = False) -> dict:
    """Run every due time-based rule; returns totals and per-rule figures."""
    now = now or utcnow()
    rule_ids = [r.id for r in due_rules(session, now, force)]
    session.rollback()
    totals = {"rules": len(rule_ids), "matched": 0, "applied": 0, "errors": 0, "per_rule": {}}
    for rule_id in rule_ids:
        counts = run_rule(session, rule_id, now)
        totals["per_rule"][rule_id] = counts
        for key in ("matched", "applied", "errors"):
            totals[key] += counts[key]
    return totals


def run_timed_rules() -> dict:
    """RQ job: one time-based pass (takes no arguments; safe to run twice)."""
    from helpdesk.extensions import db

    result = run_timed(db.session)
    logger.info("automation timed pass: %s", {k: v for k, v in result.items() if k != "per_rule"})
    return result
