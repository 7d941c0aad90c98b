"""Signal receivers: ticket (and problem) changes become webhook deliveries in the outbox.

They run inside the caller's transaction, so a rolled-back change sends nothing.
"""
from __future__ import annotations

import logging

from helpdesk import signals

logger = logging.getLogger(__name__)


def ticket_data(ticket, change: dict | None = None) -> dict:
    data = {"ref": ticket.ref, "subject": ticket.subject, "status": ticket.status, "priority": ticket.priority,
            "category": ticket.category.code if ticket.category else None, "channel": ticket.channel,
            "tier": ticket.tier, "role": ticket.role,
            "organisation_code": ticket.organisation.code if ticket.organisation else None}
    if change:
        data["change"] = change
    return data


def _on_created(session, ticket=None, actor=None, event=None, **_):
    from helpdesk.api.service import queue_event

    queue_event(session, "ticket.created", ticket_data(ticket), key=f"t{ticket.id}", ticket_id=ticket.id)


def _on_changed(session, ticket=None, actor=None, event=None, **_):
    from helpdesk.api.service import queue_event

    if event is None:
        return
    change = {"kind": event.kind, "before": event.before, "after": event.after,
              "actor": actor.label if actor else None}
    data = ticket_data(ticket, change)
    queue_event(session, "ticket.updated", data, key=f"e{event.id}", ticket_id=ticket.id)
    if event.kind == "status" and event.after == "resolved":
        queue_event(session, "ticket.resolved", data, key=f"e{event.id}", ticket_id=ticket.id)


def _on_problem(event_name: str):
    def receiver(session, problem=None, actor=None, change=None, **_):
        from helpdesk.api.service import queue_event

        if problem is None:
            return
        data = {"id": problem.id, "title": getattr(problem, "title", None), "status": getattr(problem, "status", None),
                "external_ref": getattr(problem, "external_ref", None)}
        if change:
            data["change"] = change
        stamp = getattr(problem, "updated_at", None)
        key = f"p{problem.id}:{stamp.isoformat() if stamp else ''}:{event_name}"
        queue_event(session, event_name, data, key=key)

    receiver.__name__ = f"_on_{event_name.replace('.', '_')}"
    return receiver


_PROBLEM_RECEIVERS = {"problem.created": _on_problem("problem.created"),
                      "problem.updated": _on_problem("problem.updated")}


def connect() -> None:
    signals.ticket_created.connect(_on_created)
    signals.ticket_changed.connect(_on_changed)
    # Problem signals, if the insights domain defines them (sender = session; kwargs: problem, actor, change).
    for event_name, attr in (("problem.created", "problem_created"), ("problem.updated", "problem_changed")):
        signal = getattr(signals, attr, None)
        if signal is not None:
            signal.connect(_PROBLEM_RECEIVERS[event_name])
