"""Extension points: code outside the core domains may react to ticket changes.

The core effects (SLA clock, mail, webhooks, insights) are called explicitly by
`helpdesk.tickets.effects`, in order; these signals are sent last, inside the caller's transaction
(before its commit): a receiver may add rows with `session.add` and schedule jobs with
`jobs.enqueue_after_commit`. A domain connects its receivers in its `init_app`.
"""
from blinker import Namespace

_signals = Namespace()

#: sender = the session; kwargs: ticket, actor, event (TicketEvent or None)
ticket_created = _signals.signal("ticket-created")
#: sender = the session; kwargs: ticket, actor, event (TicketEvent) — one per recorded change
ticket_changed = _signals.signal("ticket-changed")
#: sender = the session; kwargs: ticket, actor, comment
comment_added = _signals.signal("comment-added")
