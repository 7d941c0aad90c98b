"""Time tracking: minutes an agent logs with a reply or note, and the totals shown and reported.

Kept beside the reply path rather than inside it: the caller adds the comment (service.add_comment,
commit=False) and then calls `log_minutes` in the same transaction, so the minutes commit with the reply.
"""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.tickets.models import Comment, Ticket
from helpdesk.accounts.models import Organisation, User

MAX_MINUTES = 24 * 60


class TimeLogError(ValueError):
    """Refused minutes; the message is shown next to the field."""


def check_minutes(value) -> int | None:
    """None / "" for nothing logged, else an int in 1..1440 (TimeLogError otherwise)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MINUTES:
        raise TimeLogError(_l("作業時間は1〜%(max)sの分数で入力してください。", max=MAX_MINUTES))
    return value


def log_minutes(session, comment: Comment, minutes, actor: Actor) -> None:
    """Record the minutes of work behind `comment` (staff only; audited; no commit)."""
    minutes = check_minutes(minutes)
    if minutes is None:
        return
    author = session.get(User, comment.author_id) if comment.author_id else None
    if author is None or not author.is_staff:
        raise TimeLogError(_l("作業時間はヘルプデスクの担当者だけが記録できます。"))
    comment.minutes = minutes
    ticket = session.get(Ticket, comment.ticket_id)
    audit.record(session, actor, "ticket.time_logged", "ticket", ticket.ref if ticket else comment.ticket_id,
                 {"comment_id": comment.id, "minutes": minutes})


def ticket_minutes(session, ticket_id: int) -> int:
    """All minutes logged on one ticket."""
    return int(session.scalar(select(func.coalesce(func.sum(Comment.minutes), 0))
                              .where(Comment.ticket_id == ticket_id)) or 0)


def month_totals(session, since: dt.datetime, until: dt.datetime) -> dict:
    """Minutes logged in [since, until): total, per agent and per organisation (largest first)."""
    in_month = (Comment.created_at >= since, Comment.created_at < until, Comment.minutes.is_not(None))
    total = int(session.scalar(select(func.coalesce(func.sum(Comment.minutes), 0)).where(*in_month)) or 0)
    minutes = func.sum(Comment.minutes)
    agents = session.execute(
        select(User.id, User.name, User.email, minutes, func.count(func.distinct(Comment.ticket_id)))
        .join(User, User.id == Comment.author_id).where(*in_month)
        .group_by(User.id, User.name, User.email).order_by(minutes.desc(), User.id)).all()
    orgs = session.execute(
        select(Organisation.id, Organisation.code, Organisation.name, minutes,
               func.count(func.distinct(Comment.ticket_id)))
        .select_from(Comment).join(Ticket, Ticket.id == Comment.ticket_id)
        .outerjoin(Organisation, Organisation.id == Ticket.organisation_id).where(*in_month)
        .group_by(Organisation.id, Organisation.code, Organisation.name)
        .order_by(minutes.desc(), Organisation.id)).all()
    return {
        "total_minutes": total,
        "agents": [{"name": name, "email": email, "minutes": int(m), "tickets": int(n)}
                   for _id, name, email, m, n in agents],
        "organisations": [{"code": code, "name": name, "minutes": int(m), "tickets": int(n)}
                          for _id, code, name, m, n in orgs],
    }
