"""The desk's one vocabulary: the codes stored in the database and sent over the API, and their labels.

Everything else is derived from here: the CHECK constraints of the tickets table (`tickets.models`),
the API's `Literal` types (`api.schemas`), the labels templates and the timeline show (`templating`,
`tickets.display`), the queue's filter choices and the status transitions a ticket allows. Adding a
channel or a status touches this module, a migration for the CHECK constraint, and the forms or
templates that offer it — nothing else.

Values are `StrEnum`s, so a member *is* its code: `Status.OPEN == "open"`, and rows, JSON and form
data keep plain strings.
"""
from __future__ import annotations

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class Channel(StrEnum):
    PHONE = "phone"
    WEB = "web"
    EMAIL = "email"
    API = "api"


class Tier(StrEnum):
    L1 = "L1"
    L2 = "L2"
    DEV = "dev"


class OrgKind(StrEnum):
    """The three populations the desk serves (an organisation's kind, a requester's role)."""
    MUNICIPALITY = "municipality"
    CLINIC = "clinic"
    WHOLESALER = "wholesaler"


class UserRole(StrEnum):
    REQUESTER = "requester"
    AGENT = "agent"
    SPECIALIST = "specialist"
    SUPERVISOR = "supervisor"
    PRODUCT_OWNER = "product_owner"
    ADMIN = "admin"


#: Statuses of a ticket that still needs work.
OPEN_STATUSES: tuple[str, ...] = (Status.NEW, Status.OPEN, Status.PENDING, Status.ESCALATED)

#: The status changes a ticket allows (Ticket.move_to refuses the others).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.OPEN, Status.PENDING, Status.ESCALATED, Status.RESOLVED, Status.CLOSED}),
    Status.OPEN: frozenset({Status.PENDING, Status.ESCALATED, Status.RESOLVED}),
    Status.PENDING: frozenset({Status.OPEN, Status.ESCALATED, Status.RESOLVED}),
    Status.ESCALATED: frozenset({Status.OPEN, Status.PENDING, Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}

#: What a person reads for each code (Japanese source, English in the catalogue).
LABELS: dict[type[StrEnum], dict[str, object]] = {
    Status: {Status.NEW: _l("新規"), Status.OPEN: _l("対応中"), Status.PENDING: _l("回答待ち"),
             Status.ESCALATED: _l("エスカレーション中"), Status.RESOLVED: _l("解決済み"), Status.CLOSED: _l("完了")},
    Priority: {Priority.P1: _l("P1 緊急"), Priority.P2: _l("P2 高"), Priority.P3: _l("P3 通常"), Priority.P4: _l("P4 低")},
    Channel: {Channel.PHONE: _l("電話"), Channel.WEB: _l("Web"), Channel.EMAIL: _l("メール"), Channel.API: _l("API")},
    Tier: {Tier.L1: _l("L1（一次対応）"), Tier.L2: _l("L2（専門担当）"), Tier.DEV: _l("開発")},
    OrgKind: {OrgKind.MUNICIPALITY: _l("自治体"), OrgKind.CLINIC: _l("医療機関"), OrgKind.WHOLESALER: _l("卸業者")},
    UserRole: {UserRole.REQUESTER: _l("利用者"), UserRole.AGENT: _l("オペレーター"), UserRole.SPECIALIST: _l("専門担当"),
               UserRole.SUPERVISOR: _l("スーパーバイザー"), UserRole.PRODUCT_OWNER: _l("プロダクトオーナー"),
               UserRole.ADMIN: _l("管理者")},
}


def values(kind: type[StrEnum]) -> tuple[str, ...]:
    """The codes of `kind` as plain strings, in declaration order."""
    return tuple(member.value for member in kind)


def labels(kind: type[StrEnum]) -> dict[str, object]:
    """Code → translated label (lazy: rendered in the reader's language)."""
    return {member.value: text for member, text in LABELS[kind].items()}


def label(kind: type[StrEnum], code: str | None) -> str:
    """The label of one code; an unknown code is shown as it is (old rows, imports)."""
    return str(LABELS[kind].get(code, code or ""))


def check_constraint(column: str, kind: type[StrEnum]) -> str:
    """SQL for a CHECK constraint that admits exactly the codes of `kind`."""
    return f"{column} IN {values(kind)!r}"
