"""Everything a ticket change causes besides its own rows, in order, inside the caller's transaction.

The tickets service calls these functions in plain sight; nothing here commits, so a rolled-back change
leaves no clock, mail or webhook behind, and a committed one always has them. For a new ticket:

    stamp_sla(ticket)                 SLA due dates and badge, written by the ticket's own INSERT
    INSERT ticket, tags, 'created' event        (tickets.service.create_ticket)
    created(ticket, event, clock):
        SLA clock row                 sla.service.start_clock
        notification rows             notify.service.on_ticket_created   (requester 'received', assignee)
        webhook event rows            api.events.ticket_created
        insights scheduling           insights.service.schedule_assignment (after the commit)
        automation rules              automation.service.on_created    ('created' rules, in order)
        automatic assignment          tickets.assignment.auto_assign   (first matching rule, agent on shift)
        extension point               signals.ticket_created

Automation rules run before the automatic assignment, so a rule that assigns wins over the round robin;
the changes made while a ticket is created are one occurrence (they run no 'updated' rules).

Every later change (status, priority, category, assignee, escalation, merge, tags, …) records one
TicketEvent and then `changed(ticket, event)`: SLA clock → notification rows → webhook event rows →
automation rules ('updated') → signals.ticket_changed. A reply or note: `comment_added(ticket, comment)`
after its own events: SLA → notification rows → automation rules ('reply', requester side only) → signals.
A rule's own changes pass through here too but trigger no rule (loop protection in automation.service).
Outbox rows are delivered after the commit by the one dispatcher in `helpdesk.notify.dispatch`.
"""
from __future__ import annotations

from helpdesk import signals
from helpdesk.api import events as webhook_events
from helpdesk.audit import Actor
from helpdesk.automation import service as automation
from helpdesk.insights import service as insights_service
from helpdesk.notify import service as notify_service
from helpdesk.sla import service as sla_service
from helpdesk.sla.models import SlaClock
from helpdesk.tickets import assignment
from helpdesk.tickets.models import Comment, Ticket, TicketEvent


def stamp_sla(session, ticket: Ticket) -> SlaClock:
    """Before the INSERT: due dates and badge on the ticket; returns the clock to hand to `created`."""
    return sla_service.stamp_new_ticket(session, ticket)


def created(session, ticket: Ticket, actor: Actor, event: TicketEvent, clock: SlaClock | None) -> None:
    """After the INSERT of a new ticket and its 'created' event."""
    sla_service.start_clock(session, ticket, clock, at=event.at)
    if notify_service.enabled():
        notify_service.on_ticket_created(session, ticket, actor)
    webhook_events.ticket_created(session, ticket)
    insights_service.schedule_assignment(session, ticket.id)
    automation.on_created(session, ticket, actor)  # supervisors' 'created' rules, in order
    assignment.auto_assign(session, ticket)  # a matching rule's agent on shift (an ordinary assignee change)
    signals.ticket_created.send(session, ticket=ticket, actor=actor, event=event)


def changed(session, ticket: Ticket, actor: Actor, event: TicketEvent) -> None:
    """After one recorded change of an existing ticket."""
    sla_service.on_ticket_event(session, ticket, event)
    if notify_service.enabled():
        notify_service.on_ticket_changed(session, ticket, actor, event)
    webhook_events.ticket_changed(session, ticket, actor, event)
    automation.on_changed(session, ticket, actor, event)  # 'updated' rules (never for a rule's own change)
    signals.ticket_changed.send(session, ticket=ticket, actor=actor, event=event)


def comment_added(session, ticket: Ticket, actor: Actor, comment: Comment) -> None:
    """After a reply or note and the status changes it caused (those ran `changed` already)."""
    sla_service.on_public_reply(session, ticket, comment)
    if notify_service.enabled():
        notify_service.on_comment_added(session, ticket, actor, comment)
    automation.on_comment_added(session, ticket, actor, comment)  # 'reply' rules (requester side)
    signals.comment_added.send(session, ticket=ticket, actor=actor, comment=comment)
