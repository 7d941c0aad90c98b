"""Canned responses (macros): a managed list with placeholders, optionally setting status/category."""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.i18n import lazy_join
from helpdesk.text import clean_input
from helpdesk.tickets.models import STATUSES, Category, Macro, Ticket
from helpdesk.tickets.service import TicketError

PLACEHOLDERS = ("requester_name", "ref", "agent_name", "organisation_name", "subject")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render(body: str, ticket: Ticket, agent_name: str) -> str:
    """Fill {requester_name}, {ref}, {agent_name}, {organisation_name}, {subject}; leave others as typed."""
    values = {
        "requester_name": ticket.requester.name if ticket.requester else "お客様",
        "ref": ticket.ref,
        "agent_name": agent_name,
        "organisation_name": ticket.organisation.name if ticket.organisation else "",
        "subject": ticket.subject,
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def unknown_placeholders(body: str) -> list[str]:
    return sorted({m for m in _PLACEHOLDER.findall(body) if m not in PLACEHOLDERS})


def active_macros(session) -> list[Macro]:
    return list(session.scalars(select(Macro).where(Macro.active.is_(True)).order_by(Macro.title)))


def _validate(session, title: str, body: str, set_status: str | None, set_category: str | None):
    title, body = clean_input(title, 200), clean_input(body, 20_000)
    errors = {}
    if not title:
        errors["title"] = _l("名前を入力してください。")
    if not body:
        errors["body"] = _l("本文を入力してください。")
    elif unknown_placeholders(body):
        errors["body"] = _l("使えない差し込み項目があります: %(unknown)s（使えるもの: %(known)s）",
                            unknown=", ".join("{%s}" % p for p in unknown_placeholders(body)),
                            known=", ".join("{%s}" % p for p in PLACEHOLDERS))
    if set_status and set_status not in STATUSES:
        errors["set_status"] = _l("ステータスを選び直してください。")
    category_id = None
    if set_category:
        category_id = session.scalar(select(Category.id).where(Category.code == set_category))
        if category_id is None:
            errors["set_category"] = _l("カテゴリを選び直してください。")
    if errors:
        raise MacroError(errors)
    return title, body, set_status or None, category_id


class MacroError(TicketError):
    def __init__(self, field_errors: dict[str, str]):
        super().__init__(lazy_join(" ", field_errors.values()))
        self.field_errors = field_errors


def save_macro(session, actor: Actor, *, macro_id: int | None = None, title: str, body: str,
               set_status: str | None = None, set_category: str | None = None, active: bool = True) -> Macro:
    """Create or update a macro (audited)."""
    title, body, set_status, category_id = _validate(session, title, body, set_status, set_category)
    macro = session.get(Macro, macro_id) if macro_id else Macro()
    if macro is None:
        raise TicketError(_l("マクロが見つかりません。"))
    macro.title, macro.body, macro.set_status = title, body, set_status
    macro.set_category_id, macro.active = category_id, active
    session.add(macro)
    session.flush()
    audit.record(session, actor, "macro.updated" if macro_id else "macro.created", "macro", macro.id,
                 {"title": title, "set_status": set_status, "set_category_id": category_id, "active": active})
    session.commit()
    return macro


def delete_macro(session, actor: Actor, macro_id: int) -> None:
    """Retire a macro (kept for history, hidden from agents)."""
    macro = session.get(Macro, macro_id)
    if macro is None:
        raise TicketError(_l("マクロが見つかりません。"))
    macro.active = False
    audit.record(session, actor, "macro.retired", "macro", macro.id, {"title": macro.title})
    session.commit()
