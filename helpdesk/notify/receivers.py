"""Signal receivers: ticket changes become outbox mail inside the caller's transaction.

A rolled-back change therefore sends nothing, and a committed one always has its mail row.
"""
from __future__ import annotations

import logging

from helpdesk import signals

logger = logging.getLogger(__name__)


def _enabled() -> bool:
    from flask import current_app, has_app_context

    return not has_app_context() or current_app.config.get("NOTIFY_ENABLED", True)


def _on_created(session, ticket=None, actor=None, event=None, **_):
    from helpdesk.notify import service

    if ticket is not None and _enabled():
        service.on_ticket_created(session, ticket, actor)


def _on_changed(session, ticket=None, actor=None, event=None, **_):
    from helpdesk.notify import service

    if ticket is not None and _enabled():
        service.on_ticket_changed(session, ticket, actor, event)


def _on_comment(session, ticket=None, actor=None, comment=None, **_):
    from helpdesk.notify import service

    if ticket is not None and _enabled():
        service.on_comment_added(session, ticket, actor, comment)


def connect() -> None:
    signals.ticket_created.connect(_on_created)
    signals.ticket_changed.connect(_on_changed)
    signals.comment_added.connect(_on_comment)
