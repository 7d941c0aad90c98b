"""Saved queue views: a name for a queue query string, per agent (shared ones have no owner)."""
from __future__ import annotations

from urllib.parse import parse_qsl

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from helpdesk import audit
from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.tickets import queue
from helpdesk.tickets.models import SavedView


def visible_views(session, user: User) -> list[SavedView]:
    """The agent's own views and the shared ones, in their order."""
    return list(session.scalars(select(SavedView).where((SavedView.user_id == user.id) | SavedView.user_id.is_(None))
                                .order_by(SavedView.position, SavedView.name)))


def save_view(session, user: User, actor: Actor, name: str, query: str) -> SavedView:
    """Save (or overwrite the agent's view of the same name); queue.FilterError if the query is not a valid view."""
    queue.parse_filters(MultiDict(parse_qsl(query, keep_blank_values=False)))
    name = name.strip()
    view = session.scalar(select(SavedView).where(SavedView.user_id == user.id, SavedView.name == name))
    if view is None:
        view = SavedView(user_id=user.id, name=name, query=query)
        session.add(view)
    view.query = query
    session.flush()
    audit.record(session, actor, "saved_view.saved", "saved_view", view.id, {"name": name, "query": query})
    session.commit()
    return view


def delete_view(session, user: User, actor: Actor, view_id: int) -> bool:
    """Delete one of the agent's own views; False if there is no such view of theirs."""
    view = session.get(SavedView, view_id)
    if view is None or view.user_id != user.id:
        return False
    audit.record(session, actor, "saved_view.deleted", "saved_view", view.id, {"name": view.name})
    session.delete(view)
    session.commit()
    return True
