"""Webhook events: ticket (and problem) changes become webhook deliveries in the outbox.

They run inside the caller's transaction, so a rolled-back change sends nothing. The ticket
effects (`helpdesk.tickets.effects`) call `ticket_created` / `ticket_changed`.
"""
from __future__ import annotations

import logging

from helpdesk.api.service import queue_event
from helpdesk.insights.models import Problem

logger = logging.getLogger(__name__)


def ticket_data(ticket, change: dict | None = None) -> dict:
    data = {"ref": ticket.ref, "subject": ticket.subject, "status": ticket.status, "priority": ticket.priority,
            "category": ticket.category.code if ticket.category else None, "channel": ticket.channel,
            "tier": ticket.tier, "role": ticket.role,
            "organisation_code": ticket.organisation.code if ticket.organisation else None}
    if change:
        data["change"] = change
    return data


def ticket_created(session, ticket) -> None:
    """Queue `ticket.created` for the subscribers (inside the creating transaction)."""
    queue_event(session, "ticket.created", ticket_data(ticket), key=f"t{ticket.id}", ticket_id=ticket.id)


def ticket_changed(session, ticket, actor, event) -> None:
    """Queue `ticket.updated` (and `ticket.resolved`) for one recorded change."""
    change = {"kind": event.kind, "before": event.before, "after": event.after,
              "actor": actor.label if actor else None}
    data = ticket_data(ticket, change)
    queue_event(session, "ticket.updated", data, key=f"e{event.id}", ticket_id=ticket.id)
    if event.kind == "status" and event.after == "resolved":
        queue_event(session, "ticket.resolved", data, key=f"e{event.id}", ticket_id=ticket.id)


# --- problems: watched at the ORM level (the insights service sends no signals) -------------------

_PENDING = "api_problem_events"


def _problem_after_flush(session, flush_context) -> None:
    try:
        from helpdesk.insights.models import Problem, ProblemTicket
    except ImportError:  # pragma: no cover - insights domain absent
        return
    pending = session.info.get(_PENDING)
    for obj in session.new:
        if isinstance(obj, Problem):
            pending = session.info.setdefault(_PENDING, {})
            pending[obj.id] = ("problem.created", None)
    for obj in list(session.dirty):
        if isinstance(obj, Problem) and session.is_modified(obj, include_collections=False):
            pending = session.info.setdefault(_PENDING, {})
            pending.setdefault(obj.id, ("problem.updated", None))
    for collection, kind in ((session.new, "ticket_linked"), (session.deleted, "ticket_unlinked")):
        for obj in collection:
            if isinstance(obj, ProblemTicket):
                pending = session.info.setdefault(_PENDING, {})
                if obj.problem_id not in pending:
                    pending[obj.problem_id] = ("problem.updated", {"kind": kind, "ticket_id": obj.ticket_id})


def _problem_before_commit(session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # changes made since the last flush are noted by _problem_after_flush first
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    import uuid

    for problem_id, (event_name, change) in pending.items():
        problem = session.get(Problem, problem_id)
        if problem is None:
            continue
        data = {"id": problem.id, "title": problem.title, "status": problem.status,
                "external_ref": problem.external_ref}
        if change:
            data["change"] = change
        key = f"p{problem.id}:created" if event_name == "problem.created" else f"p{problem.id}:{uuid.uuid4().hex}"
        queue_event(session, event_name, data, key=key)


def _problem_rollback(session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def connect_problem_events() -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    for name, fn in (("after_flush", _problem_after_flush), ("before_commit", _problem_before_commit),
                     ("after_soft_rollback", _problem_rollback)):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)
