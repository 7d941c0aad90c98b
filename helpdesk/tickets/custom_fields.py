"""Custom fields: administrator-defined ticket fields (text, number, date, choice, checkbox).

A definition (`CustomField`) applies to every ticket or to one category; each ticket keeps at most
one typed value per field (`CustomFieldValue`, one column per type, indexed per field for the queue
filter `cf_<key>=value`). Values arrive as text from forms, query strings and JSON and are checked
here, with one plain Japanese message per field; the forms, the ticket page, the API, the queue and
the CSV export all go through these functions. A value change on a ticket is a ticket event
(`custom_field`, before → after in words) with the usual effects; definition changes are audited.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sqlalchemy import (JSON, Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Integer, String,
                        and_, exists, func, not_, select)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.common import TimestampMixin, UTCDateTime, utcnow
from helpdesk.extensions import db
from helpdesk.text import one_line
from helpdesk.tickets import service
from helpdesk.tickets.models import Category

FIELD_TYPES = ("text", "number", "date", "choice", "checkbox")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TEXT_MAX = 200
CHOICES_MAX = 50
#: Query-string / form prefix of a custom field: cf_lot_number=AB123.
PREFIX = "cf_"


class Label:
    """A field's label in the reader's language when a message is turned into text."""

    def __init__(self, field: "CustomField"):
        self.ja, self.en = field.label_ja, field.label_en

    def __str__(self) -> str:
        try:
            english = str(get_locale() or "ja") == "en"
        except Exception:  # no app context (a script): Japanese
            english = False
        return (self.en or self.ja) if english else self.ja


class CustomFieldError(ValueError):
    """Refused values; `field_errors` maps a field key (or a form field name) to a plain message."""

    def __init__(self, field_errors: dict[str, str]):
        # Rendered now (the request's language): the messages go into pages, JSON and logs as text.
        field_errors = {k: str(v) for k, v in field_errors.items()}
        super().__init__("; ".join(f"{k}: {v}" for k, v in field_errors.items()))
        self.field_errors = field_errors


class CustomField(TimestampMixin, db.Model):
    """One administrator-defined field; never deleted (deactivated), so old values keep their label."""

    __tablename__ = "custom_fields"
    __table_args__ = (CheckConstraint(f"type IN {FIELD_TYPES!r}", name="custom_field_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable name used in the API, the queue filter (cf_<key>) and the CSV header; fixed once created.
    key: Mapped[str] = mapped_column(String(40), unique=True)
    label_ja: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(10))
    #: For `choice`: [{"value": "tokyo", "ja": "東京", "en": "Tokyo"}, …] in display order.
    choices: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    #: None = every ticket; otherwise only tickets of this category.
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    category = relationship("Category", lazy="joined")

    def label(self, locale: str = "ja") -> str:
        return (self.label_en or self.label_ja) if locale == "en" else self.label_ja

    def choice_label(self, value: str | None, locale: str = "ja") -> str:
        for choice in self.choices or []:
            if choice.get("value") == value:
                return (choice.get("en") or choice.get("ja") or value) if locale == "en" else (choice.get("ja") or value)
        return value or ""

    def applies_to(self, category_id: int | None) -> bool:
        return self.category_id is None or self.category_id == category_id

    def __repr__(self) -> str:
        return f"<CustomField {self.key} {self.type}>"


class CustomFieldValue(db.Model):
    """The value of one custom field on one ticket (only the column of the field's type is set)."""

    __tablename__ = "custom_field_values"
    __table_args__ = (
        # The queue filter is an EXISTS on (field, value) → the tickets: one index per typed column.
        Index("ix_cf_values_text", "field_id", "value_text", "ticket_id"),
        Index("ix_cf_values_number", "field_id", "value_number", "ticket_id"),
        Index("ix_cf_values_date", "field_id", "value_date", "ticket_id"),
        Index("ix_cf_values_bool", "field_id", "value_bool", "ticket_id"),
    )

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("custom_fields.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)
    #: text (NFKC-normalised, one line) and choice (the choice's value)
    value_text: Mapped[str | None] = mapped_column(String(TEXT_MAX))
    value_number: Mapped[float | None] = mapped_column(Float)
    value_date: Mapped[dt.date | None] = mapped_column(Date)
    value_bool: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- definitions ------------------------------------------------------------------------------

def all_fields(session, *, active_only: bool = False) -> list[CustomField]:
    stmt = select(CustomField).order_by(CustomField.position, CustomField.id)
    if active_only:
        stmt = stmt.where(CustomField.active.is_(True))
    return list(session.scalars(stmt))


def fields_for(session, category_id: int | None, *, include_other_categories: bool = False) -> list[CustomField]:
    """Active fields that apply to a ticket of `category_id` (all-ticket fields first by position)."""
    return [f for f in all_fields(session, active_only=True)
            if include_other_categories or f.applies_to(category_id)]


def field_by_key(session, key: str) -> CustomField | None:
    return session.scalar(select(CustomField).where(CustomField.key == key))


def parse_choices(text: str) -> list[dict[str, str]]:
    """One choice a line: `value | 日本語 | English` (labels optional; the value is shown when missing)."""
    out, seen = [], set()
    for line in (text or "").splitlines():
        parts = [unicodedata.normalize("NFKC", p).strip() for p in line.split("|")]
        if not parts or not parts[0]:
            continue
        value = parts[0][:100]
        if value in seen:
            raise CustomFieldError({"choices": _l("選択肢「%(value)s」が重複しています。", value=value)})
        seen.add(value)
        ja = (parts[1] if len(parts) > 1 and parts[1] else value)[:100]
        en = (parts[2] if len(parts) > 2 and parts[2] else ja)[:100]
        out.append({"value": value, "ja": ja, "en": en})
    if len(out) > CHOICES_MAX:
        raise CustomFieldError({"choices": _l("選択肢は%(n)d個までです。", n=CHOICES_MAX)})
    return out


def choices_text(field: CustomField) -> str:
    return "\n".join(f"{c['value']} | {c.get('ja', '')} | {c.get('en', '')}" for c in field.choices or [])


def _category_id(session, code: str | None) -> int | None:
    if not code:
        return None
    category = session.scalar(select(Category).where(Category.code == code))
    if category is None:
        raise CustomFieldError({"category": _l("カテゴリ「%(code)s」は存在しません。", code=code)})
    return category.id


def definition_errors(key: str, label_ja: str, type_: str, choices_text: str) -> dict[str, str]:
    """Every problem of a new definition at once (the admin form shows them next to each input)."""
    try:
        parsed = parse_choices(choices_text) if type_ == "choice" else []
    except CustomFieldError as exc:
        return {**_definition_errors(key, label_ja, type_, [{}]), **exc.field_errors}
    return _definition_errors(key, label_ja, type_, parsed)


def _definition_errors(key: str, label_ja: str, type_: str, choices: list) -> dict[str, str]:
    errors = {}
    if not KEY_RE.match(key or ""):
        errors["key"] = _l("キーは英小文字で始まる、英小文字・数字・_ の40文字以内で入力してください（例: lot_number）。")
    if not label_ja:
        errors["label_ja"] = _l("表示名（日本語）を入力してください。")
    if type_ not in FIELD_TYPES:
        errors["type"] = _l("種類を選んでください。")
    if type_ == "choice" and not choices:
        errors["choices"] = _l("選択肢を1行に1つ入力してください。")
    return errors


def _describe(field: CustomField) -> dict[str, Any]:
    return {"key": field.key, "label_ja": field.label_ja, "label_en": field.label_en, "type": field.type,
            "required": field.required, "category": field.category.code if field.category else None,
            "position": field.position, "active": field.active,
            "choices": [c["value"] for c in field.choices or []] or None}


def create_field(session, actor: Actor, *, key: str, label_ja: str, label_en: str = "", type: str,
                 choices: str = "", required: bool = False, category: str | None = None, position: int = 0,
                 commit: bool = True) -> CustomField:
    """Add a field definition (audited)."""
    key = (key or "").strip()
    label_ja, label_en = one_line(label_ja, 100), one_line(label_en, 100)
    parsed = parse_choices(choices) if type == "choice" else []
    errors = _definition_errors(key, label_ja, type, parsed)
    if not errors and field_by_key(session, key) is not None:
        errors["key"] = _l("キー「%(key)s」は既に使われています。別のキーにしてください。", key=key)
    try:
        category_id = _category_id(session, category)
    except CustomFieldError as exc:
        errors.update(exc.field_errors)
    if errors:
        raise CustomFieldError(errors)
    field = CustomField(key=key, label_ja=label_ja, label_en=label_en or label_ja, type=type,
                        choices=parsed or None, required=bool(required), category_id=category_id,
                        position=int(position or 0), active=True)
    session.add(field)
    session.flush()
    session.refresh(field)
    audit.record(session, actor, "custom_field.created", "custom_field", field.id, _describe(field))
    _changed_definitions()
    if commit:
        session.commit()
    return field


def update_field(session, actor: Actor, field_id: int, *, label_ja: str, label_en: str = "",
                 choices: str = "", required: bool = False, category: str | None = None, position: int = 0,
                 active: bool = True, commit: bool = True) -> CustomField:
    """Change a definition (its key and type stay); choices in use cannot be removed. Audited."""
    field = session.get(CustomField, field_id)
    if field is None:
        raise CustomFieldError({"key": _l("項目が見つかりません。")})
    label_ja, label_en = one_line(label_ja, 100), one_line(label_en, 100)
    parsed = parse_choices(choices) if field.type == "choice" else []
    errors = _definition_errors(field.key, label_ja, field.type, parsed)
    if field.type == "choice" and parsed:
        kept = {c["value"] for c in parsed}
        used = set(session.scalars(select(CustomFieldValue.value_text).where(
            CustomFieldValue.field_id == field.id).distinct()))
        missing = sorted(v for v in used - kept if v)
        if missing:
            errors["choices"] = _l("選択肢「%(value)s」はチケットで使われているため削除できません。"
                                 "使わなくなった場合は表示名を変えるか、項目を無効にしてください。", value=missing[0])
    try:
        category_id = _category_id(session, category)
    except CustomFieldError as exc:
        errors.update(exc.field_errors)
    if errors:
        raise CustomFieldError(errors)
    before = _describe(field)
    field.label_ja, field.label_en = label_ja, label_en or label_ja
    if field.type == "choice":
        field.choices = parsed
    field.required, field.category_id, field.position = bool(required), category_id, int(position or 0)
    was_active, field.active = field.active, bool(active)
    field.updated_at = utcnow()
    session.flush()
    session.refresh(field)
    after = _describe(field)
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changed:
        action = "custom_field.updated"
        if set(changed) == {"active"}:
            action = "custom_field.activated" if field.active else "custom_field.deactivated"
        elif was_active != field.active and not field.active:
            action = "custom_field.deactivated"
        audit.record(session, actor, action, "custom_field", field.id, {"key": field.key, "changes": changed})
    _changed_definitions()
    if commit:
        session.commit()
    return field


def _changed_definitions() -> None:
    """The OpenAPI document lists the fields: rebuild it on the next request."""
    try:
        from helpdesk.api import openapi

        openapi.forget_cached()
    except Exception:  # the API domain is optional
        pass


# --- values -----------------------------------------------------------------------------------

_TRUE = {"1", "true", "on", "yes", "y", "はい"}
_FALSE = {"0", "false", "off", "no", "n", "いいえ", ""}


def parse_value(field: CustomField, raw: Any) -> Any:
    """The typed value of `raw` (text from a form or JSON) for `field`; None when empty.

    Raises ValueError with a plain Japanese message naming the field.
    """
    label = Label(field)
    if raw is None:
        return None
    if field.type == "checkbox":
        if isinstance(raw, bool):
            return raw
        text = unicodedata.normalize("NFKC", str(raw)).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(_l("「%(label)s」はチェックの有無（true / false）で指定してください。", label=label))
    if isinstance(raw, bool) and field.type != "checkbox":
        raise ValueError(_l("「%(label)s」に true / false は指定できません。", label=label))
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if text == "":
        return None
    if field.type == "text":
        if "\n" in text or "\r" in text:
            raise ValueError(_l("「%(label)s」は1行で入力してください。", label=label))
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
            raise ValueError(_l("「%(label)s」に使えない文字が含まれています。", label=label))
        if len(text) > TEXT_MAX:
            raise ValueError(_l("「%(label)s」は%(max)d文字以内で入力してください（今は%(n)d文字です）。", label=label, max=TEXT_MAX, n=len(text)))
        return text
    if field.type == "number":
        if isinstance(raw, (int, float)):
            number = float(raw)
        else:
            cleaned = text.replace(",", "")
            if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", cleaned):
                raise ValueError(_l("「%(label)s」は数字で入力してください（例: 120 または 1.5）。", label=label))
            number = float(cleaned)
        if not math.isfinite(number) or abs(number) >= 1e15:
            raise ValueError(_l("「%(label)s」の数が大きすぎます。", label=label))
        return number
    if field.type == "date":
        match = re.fullmatch(r"(\d{4})[-/年](\d{1,2})[-/月](\d{1,2})日?", text)
        try:
            if not match:
                raise ValueError
            return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            raise ValueError(_l("「%(label)s」は日付を YYYY-MM-DD の形で入力してください（例: 2026-04-01）。", label=label)) from None
    if field.type == "choice":
        values = [c["value"] for c in field.choices or []]
        if text in values:
            return text
        for choice in field.choices or []:  # a label typed instead of the value (API users, CSV habits)
            if text in (choice.get("ja"), choice.get("en")):
                return choice["value"]
        raise ValueError(_l("「%(label)s」は一覧の中から選んでください（%(values)s）。", label=label, values=", ".join(values[:10])))
    raise ValueError(_l("「%(label)s」の種類が正しくありません。", label=label))


def _empty(field: CustomField, value: Any) -> bool:
    return value is None or (field.type == "checkbox" and value is False)


def check_values(fields: Iterable[CustomField], raw: Mapping[str, Any], *, partial: bool = False,
                 error_key=lambda key: PREFIX + key) -> dict[str, Any]:
    """Typed values of `raw` (key → raw value) for `fields`; CustomFieldError with a message per field.

    `partial` (an update): fields missing from `raw` are left alone and required fields are only
    checked when they are sent. Otherwise (a new ticket) a required field must have a value.
    """
    values, errors = {}, {}
    for field in fields:
        if field.key not in raw:
            if not partial and field.required:
                errors[error_key(field.key)] = _required_message(field)
            continue
        try:
            value = parse_value(field, raw[field.key])
        except ValueError as exc:
            errors[error_key(field.key)] = str(exc.args[0])
            continue
        if field.required and _empty(field, value):
            errors[error_key(field.key)] = _required_message(field)
            continue
        values[field.key] = value
    if errors:
        raise CustomFieldError(errors)
    return values


def _required_message(field: CustomField) -> str:
    if field.type == "checkbox":
        return _l("「%(label)s」にチェックを入れてください。", label=Label(field))
    if field.type == "choice":
        return _l("「%(label)s」を選んでください。", label=Label(field))
    return _l("「%(label)s」を入力してください。", label=Label(field))


def form_values(session, form: Mapping[str, Any], category_code: str | None) -> dict[str, Any]:
    """Typed values of the cf_<key> inputs of a new-ticket form for the chosen category.

    Unchecked checkboxes are not posted: for them a missing input means False.
    """
    category_id = _category_id(session, category_code) if category_code else None
    fields = fields_for(session, category_id)
    raw = {}
    for field in fields:
        name = PREFIX + field.key
        if field.type == "checkbox":
            raw[field.key] = name in form and form.get(name) not in ("", "0", None)
        elif name in form:
            raw[field.key] = form.get(name)
    return check_values(fields, raw)


def _column(field: CustomField):
    return {"text": CustomFieldValue.value_text, "choice": CustomFieldValue.value_text,
            "number": CustomFieldValue.value_number, "date": CustomFieldValue.value_date,
            "checkbox": CustomFieldValue.value_bool}[field.type]


def _attr(field: CustomField) -> str:
    return _column(field).key


def values_of(session, ticket_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """{ticket id: {field key: typed value}} of the given tickets (one query)."""
    ids = list(ticket_ids)
    out: dict[int, dict[str, Any]] = {i: {} for i in ids}
    if not ids:
        return out
    fields = {f.id: f for f in all_fields(session)}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start:chunk_start + 500]
        for row in session.scalars(select(CustomFieldValue).where(CustomFieldValue.ticket_id.in_(chunk))):
            field = fields.get(row.field_id)
            if field is not None:
                out[row.ticket_id][field.key] = getattr(row, _attr(field))
    return out


def write_values(session, ticket_id: int, values: Mapping[str, Any], fields: Iterable[CustomField]) -> dict:
    """Store `values` (key → typed; None/False removes) on a ticket; returns {key: (before, after)} changed."""
    by_key = {f.key: f for f in fields}
    existing = {row.field_id: row for row in session.scalars(
        select(CustomFieldValue).where(CustomFieldValue.ticket_id == ticket_id))}
    changed = {}
    for key, value in values.items():
        field = by_key[key]
        row = existing.get(field.id)
        before = getattr(row, _attr(field)) if row is not None else None
        if _empty(field, before) and _empty(field, value):
            continue
        if before == value:
            continue
        if _empty(field, value):
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(CustomFieldValue(ticket_id=ticket_id, field_id=field.id, **{_attr(field): value}))
        else:
            setattr(row, _attr(field), value)
            row.updated_at = utcnow()
        changed[key] = (before, value)
    session.flush()
    return changed


def set_initial_values(session, ticket, values: Mapping[str, Any]) -> None:
    """The values of a ticket being created (checked already; part of its 'created' change)."""
    if values:
        write_values(session, ticket.id, values, all_fields(session))


def stored_text(field: CustomField, value: Any) -> str | None:
    """A value as stored in events and sent to machines: ISO date, plain number, true/false, choice value."""
    if _empty(field, value):
        return None
    if field.type == "date":
        return value.isoformat()
    if field.type == "number":
        return _number_text(value)
    if field.type == "checkbox":
        return "true"
    return str(value)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def json_value(field: CustomField, value: Any) -> Any:
    """A value for the API: str, int/float, bool or an ISO date string."""
    if value is None:
        return False if field.type == "checkbox" else None
    if field.type == "date":
        return value.isoformat()
    if field.type == "number":
        return int(value) if float(value).is_integer() else float(value)
    return value


def display(field: CustomField, value: Any, locale: str = "ja") -> str:
    """A value in words for pages and the CSV: the choice's label, はい/いいえ, 2026-04-01, 1,200."""
    if field.type == "checkbox":
        if locale == "en":
            return "Yes" if value else "No"
        return "はい" if value else "いいえ"
    if value is None or value == "":
        return ""
    if field.type == "choice":
        return field.choice_label(value, locale)
    if field.type == "number":
        return f"{int(value):,}" if float(value).is_integer() else f"{float(value):,}"
    if field.type == "date":
        return value.isoformat()
    return str(value)


def update_ticket_values(session, ticket_id: int, raw: Mapping[str, Any], actor: Actor, *,
                         expected_version: int | None = None, partial: bool = True,
                         error_key=lambda key: PREFIX + key, commit: bool = True):
    """Change a ticket's custom field values: one `custom_field` event per changed field (before → after).

    Raises CustomFieldError (per field) for unknown keys or bad values, VersionConflict on a stale version.
    """
    ticket = service._get(session, ticket_id)
    service._check_version(ticket, expected_version)
    fields = {f.key: f for f in all_fields(session)}
    unknown = [k for k in raw if k not in fields or not fields[k].active]
    if unknown:
        raise CustomFieldError({error_key(k): _l("項目「%(key)s」はありません。", key=k) for k in unknown})
    values = check_values([fields[k] for k in raw], raw, partial=partial, error_key=error_key)
    changed = write_values(session, ticket.id, values, fields.values())
    if changed:
        ticket.updated_at = utcnow()  # a versioned change of the ticket: concurrent editors see a conflict
        for key, (before, after) in changed.items():
            field = fields[key]
            service._event(session, ticket, actor, "custom_field", stored_text(field, before),
                           stored_text(field, after), {"key": key, "field_id": field.id})
    if commit:
        session.commit()
    return changed


def describe_event(session, event, locale: str = "ja") -> str:
    """'ロット番号: AB1 → AB2' for a custom_field timeline event (labels and choices in words)."""
    detail = event.detail or {}
    field = session.get(CustomField, detail.get("field_id")) if detail.get("field_id") else None
    if field is None:
        return f"{detail.get('key', '?')}: {event.before or '—'} → {event.after or '—'}"

    def words(text):
        if text is None:
            return display(field, False, locale) if field.type == "checkbox" else "—"
        try:
            return display(field, parse_value(field, text), locale) or "—"
        except ValueError:
            return text

    return f"{field.label(locale)}: {words(event.before)} → {words(event.after)}"


# --- queue filter -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Filter:
    key: str
    field_id: int
    type: str
    value: Any


def parse_filter_args(session, pairs: Iterable[tuple[str, str]]) -> tuple[list[Filter], dict[str, str]]:
    """cf_<key>=value pairs of a query string → filters, and messages for the bad ones."""
    filters, errors = [], {}
    for name, raw in pairs:
        key = name[len(PREFIX):]
        raw = (raw or "").strip()
        if raw == "":
            continue
        if len(raw) > TEXT_MAX:
            errors[name] = str(_l("条件は%(max)d文字以内で入力してください。", max=TEXT_MAX))
            continue
        field = field_by_key(session, key) if KEY_RE.match(key) else None
        if field is None:
            errors[name] = str(_l("追加項目「%(key)s」はありません。", key=key[:40]))
            continue
        try:
            value = parse_value(field, raw)
        except ValueError as exc:
            errors[name] = str(exc.args[0])
            continue
        if value is None:
            continue
        filters.append(Filter(key, field.id, field.type, value))
    return filters, errors


def filter_clause(flt: Filter, ticket_id_column):
    """EXISTS (a value of the field equal to flt.value) — NOT EXISTS(checked) for checkbox=false."""
    column = {"text": CustomFieldValue.value_text, "choice": CustomFieldValue.value_text,
              "number": CustomFieldValue.value_number, "date": CustomFieldValue.value_date,
              "checkbox": CustomFieldValue.value_bool}[flt.type]
    if flt.type == "checkbox":
        checked = exists().where(CustomFieldValue.ticket_id == ticket_id_column,
                                 CustomFieldValue.field_id == flt.field_id, CustomFieldValue.value_bool.is_(True))
        return checked if flt.value else not_(checked)
    return exists().where(and_(CustomFieldValue.ticket_id == ticket_id_column,
                               CustomFieldValue.field_id == flt.field_id, column == flt.value))


def filter_arg(flt: Filter) -> tuple[str, str]:
    value = flt.value
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, float):
        text = _number_text(value)
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        text = str(value)
    return PREFIX + flt.key, text


def count_values(session, field_id: int) -> int:
    return session.scalar(select(func.count()).select_from(CustomFieldValue)
                          .where(CustomFieldValue.field_id == field_id)) or 0


# --- OpenAPI ------------------------------------------------------------------------------------

_JSON_TYPES = {"text": {"type": "string", "maxLength": TEXT_MAX},
               "number": {"type": "number"},
               "date": {"type": "string", "format": "date"},
               "checkbox": {"type": "boolean"}}


def openapi_schema(session) -> dict:
    """The `CustomFields` component: one property per active field, typed, with its labels."""
    properties = {}
    required = []
    for field in (all_fields(session, active_only=True) if session is not None else []):
        if field.type == "choice":
            schema: dict = {"type": "string", "enum": [c["value"] for c in field.choices or []]}
        else:
            schema = dict(_JSON_TYPES[field.type])
        scope = f"category `{field.category.code}`" if field.category else "every ticket"
        schema["description"] = (f"{field.label_en} / {field.label_ja} ({field.type}, {scope}"
                                 + (", required on creation" if field.required else "") + ")")
        if field.type != "checkbox":
            schema = {"anyOf": [schema, {"type": "null"}], "description": schema.pop("description")}
        properties[field.key] = schema
        if field.required:
            required.append(field.key)
    generic = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]}
    doc = {"type": "object", "title": "CustomFields", "properties": properties,
           "additionalProperties": False if session is not None else generic,
           "description": "Custom fields defined by administrators (/admin/custom-fields). Send `null` (or "
                          "false for a checkbox) to clear a value. Filter the list with `cf_<key>=value`."}
    if required:
        doc["x-required-on-create"] = required
    return doc


def signature(session) -> tuple:
    """What the OpenAPI document depends on: changes when a definition changes."""
    return tuple(session.execute(select(CustomField.id, CustomField.updated_at, CustomField.active)
                                 .order_by(CustomField.id)).all())
