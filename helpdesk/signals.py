"""Domain signals: other domains react to ticket changes without the tickets service importing them.

Receivers run inside the caller's transaction (before its commit): they may add rows (outbox mail,
SLA fields, problem links) with `session.add`, and schedule jobs with `jobs.enqueue_after_commit`.
"""
from blinker import Namespace

_signals = Namespace()

#: sender = the session; kwargs: ticket, actor — before the INSERT (no id yet): receivers may set the
#: ticket's own columns (e.g. SLA due dates) so they are written by that INSERT, not by an UPDATE.
ticket_creating = _signals.signal("ticket-creating")
#: sender = the session; kwargs: ticket, actor, event (TicketEvent or None)
ticket_created = _signals.signal("ticket-created")
#: sender = the session; kwargs: ticket, actor, event (TicketEvent) — one per recorded change
ticket_changed = _signals.signal("ticket-changed")
#: sender = the session; kwargs: ticket, actor, comment
comment_added = _signals.signal("comment-added")
