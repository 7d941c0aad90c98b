"""Shared model helpers: UTC-aware timestamps, the Tokyo zone, small enums."""
from __future__ import annotations

import datetime as dt
import unicodedata
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, event
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from helpdesk.vocabulary import OrgKind, UserRole, values

TOKYO = ZoneInfo("Asia/Tokyo")
UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Store UTC, always hand back aware datetimes (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


ORG_KINDS = values(OrgKind)
USER_ROLES = values(UserRole)
STAFF_ROLES = frozenset({"agent", "specialist", "supervisor", "admin"})
INSIGHT_ROLES = frozenset({"product_owner", "supervisor", "admin"})
PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)


def to_tokyo(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(TOKYO) if value is not None else None


#: First characters that make a spreadsheet read a cell as a formula (after NFKC, so the full-width
#: ＝＋－＠ and the small ﹦﹢﹣﹫ forms count too: Excel's Japanese input treats them as their ASCII forms).
_FORMULA_START = frozenset("=+-@\t\r\n")


def csv_safe(value) -> str:
    """Neutralise spreadsheet formulas in an exported cell (CSV injection): the one helper every CSV uses.

    A cell whose first non-blank character is a formula starter, in ASCII, full-width or small form,
    gets a leading apostrophe, so it is shown as text.
    """
    text = "" if value is None else str(value)
    first = text.lstrip(" \u3000")[:1] or text[:1]
    if first and (first in _FORMULA_START or unicodedata.normalize("NFKC", first)[:1] in _FORMULA_START
                  or first == "\u2212"):  # U+2212 MINUS SIGN (no NFKC form, read as minus)
        return "'" + text
    return text


_INSERT_PLANS: dict[tuple[type, bool], tuple] = {}


def insert_now(session, obj, *, attach: bool = False):
    """INSERT a new ORM object's row at once: one precompiled Core statement on the session's connection.

    For rows written on hot paths (a new ticket, its "created" event and SLA clock, audit rows): the
    unit of work costs two to three times the statement itself. The row is in the session's
    transaction (committed or rolled back with it). Unset columns get their column defaults.

    attach=False: the object is *not* added to the session — it keeps the values it was built with
    plus its new primary key, so it can be handed to signal receivers, and a later query in the same
    transaction finds the row. For append-only rows that nothing changes afterwards.

    attach=True: every column comes back (RETURNING) into the same object, which then joins the session
    as a clean persistent instance, as if loaded by a query — later changes to it are flushed as
    UPDATEs as usual (the version counter included). Its attribute history is reset: related objects
    assigned before must already be persistent, and collections must be set with `set_committed_value`.
    """
    cls = type(obj)
    plan = _INSERT_PLANS.get((cls, attach))
    if plan is None:
        from sqlalchemy import insert

        mapper = cls.__mapper__
        table = mapper.local_table
        attrs = [(attr.key, attr.columns[0].key) for attr in mapper.column_attrs]
        serial = table.autoincrement_column  # e.g. an integer id the database numbers
        if attach:
            stmt = insert(table).returning(*[table.c[column] for _, column in attrs])
        else:
            stmt = insert(table).returning(serial) if serial is not None else insert(table)
        version = mapper.version_id_col.key if mapper.version_id_col is not None else None
        plan = _INSERT_PLANS[(cls, attach)] = (
            stmt, attrs, [key for key, _ in attrs],
            mapper.get_property_by_column(serial).key if serial is not None else None, version)
    stmt, attrs, keys, serial_key, version_key = plan
    state = obj.__dict__
    values = {column: state[key] for key, column in attrs if key in state and key != serial_key}
    if version_key is not None and values.get(version_key) is None:
        values[version_key] = 1  # what the unit of work would have set
    result = session.connection().execute(stmt, values)
    if attach:
        from sqlalchemy.orm import make_transient_to_detached

        state.update(zip(keys, result.one()))
        make_transient_to_detached(obj)
        session.add(obj)
        # The session takes it for a row loaded before this transaction, so a rollback would keep it
        # (and its primary key, which the database may hand out again): remembered to be let go then.
        session.info.setdefault(_ATTACHED_KEY, []).append(obj)
    elif serial_key is not None:
        setattr(obj, serial_key, result.scalar_one())
    return obj


_ATTACHED_KEY = "helpdesk_inserted_attached"


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back_rows(session: Session, previous_transaction) -> None:
    """Rows insert_now(attach=True) wrote in a transaction that rolled back leave the session with it."""
    if previous_transaction.parent is None:
        for obj in session.info.pop(_ATTACHED_KEY, ()):
            if obj in session:
                session.expunge(obj)


@event.listens_for(Session, "after_commit")
def _keep_committed_rows(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_ATTACHED_KEY, None)
