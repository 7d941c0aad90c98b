"""Who is acting, and the append-only audit trail every change writes to."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from helpdesk.common import insert_now
from helpdesk.text import escape_controls, escape_controls_deep


@dataclass(frozen=True)
class Actor:
    """The person or integration behind a change, passed explicitly into services."""

    user_id: int | None
    label: str
    ip: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(None, label)

    @classmethod
    def for_user(cls, user, ip: str | None = None) -> "Actor":
        return cls(user.id, user.email, ip)


def record(session, actor: Actor, action: str, object_type: str, object_id: Any = None,
           detail: dict | None = None, summary: str | None = None):
    """Write an audit row in the session's transaction; the caller's commit makes it durable with the
    change, a rollback takes it away with the change. Inserted at once without the unit of work (audit
    rows are append-only; the actor is an existing user, so no pending row has to go first)."""
    from helpdesk.accounts.models import AuditLog  # late: accounts imports this module

    # Labels and free text come from users (a login name, a subject): control characters are stored
    # escaped ("\n" as "\\n") so no value can forge a line or hide text in the trail.
    row = AuditLog(
        actor_id=actor.user_id,
        actor_label=escape_controls(actor.label or "")[:254],
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else escape_controls(str(object_id)),
        ip=escape_controls(actor.ip),
        detail=escape_controls_deep(detail),
        summary=escape_controls(summary),
    )
    return insert_now(session, row)
