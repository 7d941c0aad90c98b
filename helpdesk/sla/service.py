"""SLA clock: due dates from policies on the desk calendar, pauses while pending, the breach sweep.

The ticket effects (`helpdesk.tickets.effects`) call the clock functions here inside the caller's
transaction; they never commit. `sweep()` and the settings functions commit themselves.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
import threading
import unicodedata
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, literal, or_, select, update

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.common import TOKYO, UTCDateTime, utcnow
from helpdesk.i18n import lazy_join
from helpdesk.lookup_cache import LookupCache
from helpdesk.sla.calendar import BusinessCalendar, default_hours
from helpdesk.sla.models import ClosedDay, DeskSettings, SlaClock, SlaPolicy
from helpdesk.sla.repository import insert_clock
from helpdesk.text import clean_input
from helpdesk.tickets.models import Ticket
from helpdesk.accounts.models import User
from helpdesk.sla.ical import IcsError, parse_holidays
from helpdesk.tickets import service as tickets_service

logger = logging.getLogger(__name__)

#: Built-in targets (business minutes) used when no policy row matches: (first response, resolution).
DEFAULT_TARGETS = {"P1": (30, 240), "P2": (60, 540), "P3": (240, 1620), "P4": (540, 2700)}
DEFAULT_AT_RISK_PERCENT = 75
#: Ticket statuses during which the SLA clock runs (pending pauses it; resolved/closed stop it).
RUNNING = ("new", "open", "escalated")
STOPPED = ("resolved", "closed")


class SlaError(ValueError):
    """A refused SLA settings change; the message is shown to the user."""


# --- calendar --------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_calendar_cache: dict[object, BusinessCalendar] = {}


def _parse_hours(raw: dict | None) -> dict[int, list[tuple[dt.time, dt.time]]]:
    if not raw:
        return default_hours()
    hours: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for weekday, spans in raw.items():
        hours[int(weekday)] = [(_hhmm(a), _hhmm(b)) for a, b in spans]
    return hours


_CALENDAR = LookupCache("sla-calendar", lambda: (DeskSettings, ClosedDay))
_POLICIES = LookupCache("sla-policies", lambda: (SlaPolicy,))


def get_calendar(session) -> BusinessCalendar:
    """The desk calendar from the settings row and closed days (per-process lookup cache)."""
    return _CALENDAR.get(session, "calendar", lambda: _load_calendar(session))


def _load_calendar(session) -> BusinessCalendar:
    settings = session.get(DeskSettings, 1)
    key = (id(session.get_bind()), settings.version if settings else 0)
    with _cache_lock:
        cached = _calendar_cache.get(key)
    if cached is not None:
        return cached
    closed = set(session.scalars(select(ClosedDay.day)).all())
    if settings is None:
        calendar = BusinessCalendar(default_hours(), closed_dates=closed)
    else:
        calendar = BusinessCalendar(_parse_hours(settings.hours), closed_dates=closed,
                                    holidays=None if settings.public_holidays else (lambda d: False),
                                    year_end=settings.year_end_closure)
    with _cache_lock:
        if len(_calendar_cache) > 32:
            _calendar_cache.clear()
        _calendar_cache[key] = calendar
    return calendar


def _settings_row(session) -> DeskSettings:
    row = session.get(DeskSettings, 1)
    if row is None:
        row = DeskSettings(id=1, hours=_hours_json(default_hours()), public_holidays=True,
                           year_end_closure=True, version=1)
        session.add(row)
        session.flush()
    return row


def _hours_json(hours: dict[int, list[tuple[dt.time, dt.time]]]) -> dict:
    return {str(d): [format_day_hours([span]).split("-") for span in spans] for d, spans in hours.items() if spans}


def desk_settings(session) -> dict:
    """Hours, holiday and year-end switches as plain values (defaults when never saved)."""
    row = session.get(DeskSettings, 1)
    hours = _parse_hours(row.hours if row else None)
    return {"hours": hours, "public_holidays": row.public_holidays if row else True,
            "year_end_closure": row.year_end_closure if row else True}


def set_desk_hours(session, hours: dict[int, list[tuple[dt.time, dt.time]]], actor: Actor, *,
                   public_holidays: bool = True, year_end_closure: bool = True) -> None:
    """Replace the desk hours (validated by building a calendar from them)."""
    if not any(hours.values()):
        raise SlaError(_l("少なくとも1つの曜日に受付時間を入力してください。"))
    try:
        BusinessCalendar(hours, holidays=lambda d: False)
    except ValueError as exc:
        raise SlaError(_l("受付時間の設定が正しくありません: %(reason)s", reason=str(exc))) from exc
    row = _settings_row(session)
    before = {"hours": row.hours, "public_holidays": row.public_holidays, "year_end": row.year_end_closure}
    row.hours, row.public_holidays, row.year_end_closure = _hours_json(hours), public_holidays, year_end_closure
    row.version += 1
    audit.record(session, actor, "sla.desk_hours", "sla_desk_settings", 1,
                 {"before": before, "after": {"hours": row.hours, "public_holidays": public_holidays,
                                              "year_end": year_end_closure}})
    session.commit()


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$|^24:00$")


def _hhmm(value: str) -> dt.time | None:
    value = value.strip()
    if not _HHMM.match(value):
        return None
    if value == "24:00":
        return dt.time(23, 59, 59, 999999)
    hour, minute = value.split(":")
    return dt.time(int(hour), int(minute))


def parse_day_hours(text: str | None) -> list[tuple[dt.time, dt.time]]:
    """"09:00-18:00" or "09:00-12:00, 13:00-18:00" → intervals; "" / "closed" / "休み" → closed.

    Raises SlaError with one plain message for the whole field.
    """
    text = unicodedata.normalize("NFKC", text or "").strip()
    if text.lower() in ("", "closed", "-", "休み", "休業"):
        return []
    spans: list[tuple[dt.time, dt.time]] = []
    for part in text.replace("、", ",").split(","):
        bounds = part.replace("〜", "-").replace("~", "-").split("-")
        if len(bounds) != 2:
            raise SlaError(_l("「09:00-18:00」の形で入力してください（休憩を挟むときは「09:00-12:00, 13:00-18:00」、休みは空欄）。"))
        start, end = _hhmm(bounds[0]), _hhmm(bounds[1])
        if start is None or end is None:
            raise SlaError(_l("時刻は 00:00〜24:00 の HH:MM で入力してください（例: 09:00-18:00）。"))
        if end <= start:
            raise SlaError(_l("終了時刻は開始時刻より後にしてください。"))
        spans.append((start, end))
    spans.sort()
    for (_s1, e1), (s2, _e2) in zip(spans, spans[1:]):
        if s2 < e1:
            raise SlaError(_l("時間帯が重なっています。重ならないように入力してください。"))
    return spans


def format_day_hours(spans) -> str:
    """Intervals as the forms and the CLI show them: "09:00-12:00, 13:00-18:00" ("" when closed)."""
    def hhmm(t: dt.time) -> str:
        return "24:00" if t >= dt.time(23, 59, 59) else t.strftime("%H:%M")
    return ", ".join(f"{hhmm(a)}-{hhmm(b)}" for a, b in spans)


def list_closed_days(session, since: dt.date | None = None) -> list[ClosedDay]:
    stmt = select(ClosedDay).order_by(ClosedDay.day)
    if since is not None:
        stmt = stmt.where(ClosedDay.day >= since)
    return list(session.scalars(stmt))


def add_closed_day(session, day: dt.date, reason: str, actor: Actor) -> ClosedDay:
    """Close the desk on `day` (existing due dates keep their values; new ones skip the day)."""
    if not isinstance(day, dt.date):
        raise SlaError(_l("日付を YYYY-MM-DD の形式で入力してください。"))
    reason = clean_input(reason, 200)
    if session.scalar(select(ClosedDay).where(ClosedDay.day == day)) is not None:
        raise SlaError(_l("%(day)s は既に休業日として登録されています。", day=day.isoformat()))
    row = ClosedDay(day=day, reason=reason, created_by_id=actor.user_id)
    session.add(row)
    _settings_row(session).version += 1
    session.flush()
    audit.record(session, actor, "sla.closed_day_added", "sla_closed_day", row.id,
                 {"day": day.isoformat(), "reason": reason})
    session.commit()
    return row


def import_closed_days(session, data: bytes | str, actor: Actor, filename: str = "") -> dict:
    """Add the days of an iCalendar file's all-day events as closed days (days already closed are kept).

    A bad file is refused as a whole (SlaError naming the line); one audit row lists what was added.
    """
    try:
        holidays = parse_holidays(data)
    except IcsError as exc:
        raise SlaError(str(exc)) from exc
    wanted: dict[dt.date, str] = {}
    for holiday in holidays:
        wanted.setdefault(holiday.day, holiday.summary)
    existing = set(session.scalars(select(ClosedDay.day).where(ClosedDay.day.in_(list(wanted)))))
    added = sorted(day for day in wanted if day not in existing)
    for day in added:
        session.add(ClosedDay(day=day, reason=clean_input(wanted[day], 200), created_by_id=actor.user_id))
    if added:
        _settings_row(session).version += 1
    audit.record(session, actor, "sla.closed_days_imported", "sla_closed_day", None,
                 {"file": clean_input(filename, 200), "added": [d.isoformat() for d in added],
                  "already_closed": len(existing)})
    session.commit()
    return {"added": len(added), "already_closed": len(existing), "days": added}


def closed_day_on(session, day: dt.date) -> ClosedDay | None:
    return session.scalar(select(ClosedDay).where(ClosedDay.day == day))


def remove_closed_day(session, closed_day_id: int, actor: Actor) -> None:
    row = session.get(ClosedDay, closed_day_id)
    if row is None:
        raise SlaError(_l("休業日が見つかりません。"))
    audit.record(session, actor, "sla.closed_day_removed", "sla_closed_day", row.id,
                 {"day": row.day.isoformat(), "reason": row.reason})
    session.delete(row)
    _settings_row(session).version += 1
    session.commit()


# --- policies --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Targets:
    policy_id: int | None
    first_response_minutes: int
    resolution_minutes: int
    at_risk_percent: int = DEFAULT_AT_RISK_PERCENT
    auto_escalate: bool = False
    next_update_minutes: int | None = None


def find_policy(session, priority: str, role: str | None = None, category_code: str | None = None,
                cache: dict | None = None, organisation_id: int | None = None) -> Targets:
    """The most specific active policy: the ticket's organisation first (+category), then
    priority+role+category, +category, +role, priority alone, built-in.

    `cache` (a dict the caller keeps for one batch) saves the query when many tickets are handled.
    """
    if cache is not None:
        key = (priority, role, category_code, organisation_id)
        if key not in cache:
            cache[key] = find_policy(session, priority, role, category_code, organisation_id=organisation_id)
        return cache[key]
    rows = _POLICIES.get(session, priority, lambda: _active_policies(session, priority))

    def rank(row: tuple[int | None, str | None, str | None, Targets]) -> int | None:
        p_org, p_role, p_category, _ = row
        if p_org not in (None, organisation_id) or p_role not in (None, role) \
                or p_category not in (None, category_code):
            return None
        return (4 if p_org else 0) + (2 if p_category else 0) + (1 if p_role else 0)

    best = max(((rank(r), r) for r in rows if rank(r) is not None), key=lambda x: x[0], default=None)
    if best is not None:
        return best[1][3]
    first, resolution = DEFAULT_TARGETS.get(priority, DEFAULT_TARGETS["P3"])
    return Targets(None, first, resolution)


def _active_policies(session, priority: str) -> list[tuple[int | None, str | None, str | None, Targets]]:
    """(organisation, role, category, targets) of the active policies for `priority`: plain values, safe to cache."""
    rows = session.scalars(select(SlaPolicy).where(SlaPolicy.priority == priority, SlaPolicy.active)).all()
    return [(p.organisation_id, p.role, p.category_code,
             Targets(p.id, p.first_response_minutes, p.resolution_minutes, p.at_risk_percent, p.auto_escalate,
                     p.next_update_minutes)) for p in rows]


def list_policies(session) -> list[SlaPolicy]:
    return list(session.scalars(select(SlaPolicy).order_by(SlaPolicy.priority, SlaPolicy.organisation_id,
                                                            SlaPolicy.role, SlaPolicy.category_code)))


def save_policy(session, actor: Actor, *, priority: str, first_response_minutes: int, resolution_minutes: int,
                role: str | None = None, category_code: str | None = None, at_risk_percent: int = 75,
                auto_escalate: bool = False, policy_id: int | None = None, organisation_id: int | None = None,
                next_update_minutes: int | None = None) -> SlaPolicy:
    """Create or update a policy (applies to tickets created or re-prioritised from now on)."""
    errors = []
    if priority not in DEFAULT_TARGETS:
        errors.append(_l("優先度は P1〜P4 から選んでください。"))
    if not (isinstance(first_response_minutes, int) and first_response_minutes > 0):
        errors.append(_l("初回応答の目標は1以上の分数で入力してください。"))
    if not (isinstance(resolution_minutes, int) and resolution_minutes > 0):
        errors.append(_l("解決の目標は1以上の分数で入力してください。"))
    elif isinstance(first_response_minutes, int) and resolution_minutes < first_response_minutes:
        errors.append(_l("解決の目標は初回応答の目標以上にしてください。"))
    if not (isinstance(at_risk_percent, int) and 1 <= at_risk_percent <= 99):
        errors.append(_l("期限間近のしきい値は1〜99%で入力してください。"))
    if next_update_minutes is not None and not (isinstance(next_update_minutes, int) and next_update_minutes > 0):
        errors.append(_l("次回更新の目標は1以上の分数で入力してください（追跡しないときは空欄）。"))
    if errors:
        raise SlaError(lazy_join(" ", errors))
    row = session.get(SlaPolicy, policy_id) if policy_id else None
    if policy_id and row is None:
        raise SlaError(_l("SLAポリシーが見つかりません。"))
    if organisation_id is not None:
        from helpdesk.accounts.models import Organisation

        if session.get(Organisation, organisation_id) is None:
            raise SlaError(_l("組織が見つかりません。"))
    clash = session.scalar(select(SlaPolicy).where(
        SlaPolicy.priority == priority,
        SlaPolicy.organisation_id.is_(None) if organisation_id is None else SlaPolicy.organisation_id == organisation_id,
        SlaPolicy.role.is_(None) if role is None else SlaPolicy.role == role,
        SlaPolicy.category_code.is_(None) if category_code is None else SlaPolicy.category_code == category_code))
    if clash is not None and clash is not row:
        raise SlaError(_l("同じ優先度・対象のポリシーが既にあります。そちらを編集してください。"))
    before = None
    if row is None:
        row = SlaPolicy(priority=priority)
        session.add(row)
    else:
        before = {"first_response": row.first_response_minutes, "resolution": row.resolution_minutes,
                  "at_risk": row.at_risk_percent, "auto_escalate": row.auto_escalate,
                  "organisation_id": row.organisation_id, "next_update": row.next_update_minutes}
    row.priority, row.role, row.category_code = priority, role, category_code
    row.organisation_id, row.next_update_minutes = organisation_id, next_update_minutes
    row.first_response_minutes, row.resolution_minutes = first_response_minutes, resolution_minutes
    row.at_risk_percent, row.auto_escalate, row.active = at_risk_percent, auto_escalate, True
    session.flush()
    audit.record(session, actor, "sla.policy_saved", "sla_policy", row.id,
                 {"before": before, "after": {"priority": priority, "role": role, "category": category_code,
                                              "first_response": first_response_minutes,
                                              "resolution": resolution_minutes, "at_risk": at_risk_percent,
                                              "auto_escalate": auto_escalate, "organisation_id": organisation_id,
                                              "next_update": next_update_minutes}})
    session.commit()
    return row


# --- the clock -------------------------------------------------------------------------------

def _risk_minutes(target: int, percent: int) -> int:
    return max(1, math.floor(target * percent / 100))


def apply_sla(session, ticket: Ticket, now: dt.datetime | None = None, *, reset_targets: bool = True,
              policy_cache: dict | None = None, calendar: BusinessCalendar | None = None,
              known_new: bool = False, add: bool = True) -> SlaClock:
    """Set the ticket's due dates from its policy, its start time and the minutes it spent paused.

    `calendar` and `known_new` (the ticket has no clock yet) spare queries in bulk backfills;
    `add=False` leaves a new clock out of the session (the ticket is not inserted yet, see stamp_new_ticket).
    """
    calendar = calendar or get_calendar(session)
    clock = None if known_new else session.get(SlaClock, ticket.id)
    if clock is None or reset_targets:
        # Look the policy up before adding the clock: the query would autoflush a half-built row.
        targets = find_policy(session, ticket.priority, ticket.role,
                              ticket.category.code if ticket.category is not None else None, cache=policy_cache,
                              organisation_id=ticket.organisation_id)
    if clock is None:
        clock = SlaClock(ticket_id=ticket.id, started_at=ticket.created_at or now or utcnow(), paused_minutes=0)
        if add:
            session.add(clock)
        reset_targets = True
    if reset_targets:
        clock.policy_id = targets.policy_id
        clock.first_response_minutes = targets.first_response_minutes
        clock.resolution_minutes = targets.resolution_minutes
        clock.at_risk_percent = targets.at_risk_percent
        clock.auto_escalate = targets.auto_escalate
        if clock.next_update_minutes != targets.next_update_minutes:
            clock.next_update_minutes = targets.next_update_minutes
            if targets.next_update_minutes is None:
                clock.next_update_due_at = clock.next_update_risk_at = None
            elif clock.next_update_due_at is not None:
                _next_update_from(calendar, clock, now or utcnow())  # the new target counts from the change
    start, paused = clock.started_at, clock.paused_minutes or 0
    add = calendar.add_business_minutes
    ticket.first_response_due_at = add(start, clock.first_response_minutes + paused)
    ticket.resolution_due_at = add(start, clock.resolution_minutes + paused)
    clock.first_response_risk_at = add(start, _risk_minutes(clock.first_response_minutes, clock.at_risk_percent)
                                       + paused)
    clock.resolution_risk_at = add(start, _risk_minutes(clock.resolution_minutes, clock.at_risk_percent) + paused)
    if ticket.status in STOPPED and clock.stopped_at is None:
        clock.stopped_at = ticket.resolved_at or ticket.closed_at or now or utcnow()
    if ticket.status in STOPPED:
        clock.next_update_due_at = clock.next_update_risk_at = None
    ticket.sla_state = _next_state(ticket.sla_state, _state_now(ticket, clock, now or utcnow()))
    return clock


_SEVERITY = {None: 0, "ok": 0, "at_risk": 1, "breached": 2}


def _next_state(current: str | None, computed: str | None) -> str | None:
    """Changes may only lower the badge; raising it is the sweep's job, because the sweep notifies."""
    if computed is None:
        return current if current == "breached" else None
    if _SEVERITY[computed] < _SEVERITY.get(current, 0):
        return computed
    return current if current is not None else "ok"


def _state_now(ticket: Ticket, clock: SlaClock, now: dt.datetime) -> str | None:
    """The badge state right after a change (the sweep moves it forward as time passes)."""
    if ticket.status in STOPPED:
        return ticket.sla_state if ticket.sla_state == "breached" else None
    at = ticket.sla_paused_at if ticket.status == "pending" and ticket.sla_paused_at else now
    fr_open = ticket.first_response_at is None
    update_due = clock.next_update_due_at if ticket.status != "pending" else None
    if (fr_open and ticket.first_response_due_at and at > ticket.first_response_due_at) or \
            (ticket.resolution_due_at and at > ticket.resolution_due_at) or (update_due and at > update_due):
        return "breached"
    if (fr_open and clock.first_response_risk_at and at >= clock.first_response_risk_at) or \
            (clock.resolution_risk_at and at >= clock.resolution_risk_at) or \
            (update_due and clock.next_update_risk_at and at >= clock.next_update_risk_at):
        return "at_risk"
    return "ok"


def stamp_new_ticket(session, ticket: Ticket) -> SlaClock:
    """Before the ticket's INSERT: its due dates and badge are set so that INSERT writes them.

    Returns the ticket's clock, not yet in the session (the ticket has no id yet): pass it to
    `start_clock` once the ticket is inserted.
    """
    with session.no_autoflush:
        return apply_sla(session, ticket, ticket.created_at, known_new=True, add=False)


def start_clock(session, ticket: Ticket, clock: SlaClock | None = None, at: dt.datetime | None = None) -> None:
    """After the ticket's INSERT: write its clock row (`clock` from `stamp_new_ticket`, or computed now)."""
    if clock is not None:
        clock.ticket_id = ticket.id
        insert_clock(session, clock)  # a later change in this transaction reads it back (session.get)
        return
    apply_sla(session, ticket, at or ticket.created_at, known_new=True)


def on_ticket_event(session, ticket: Ticket, event) -> None:
    """Move the clock for one recorded change (status, priority, category); other changes leave it."""
    if event.kind == "status":
        on_status_changed(session, ticket, event.before, event.after, at=event.at)
    elif event.kind == "priority":
        on_priority_changed(session, ticket, at=event.at)
    elif event.kind == "category":
        on_category_changed(session, ticket, at=event.at)


def _next_update_from(calendar: BusinessCalendar, clock: SlaClock, since: dt.datetime) -> None:
    """Start the next-update window at `since` (an agent's public reply, or the end of a pause)."""
    minutes = clock.next_update_minutes
    clock.next_update_due_at = calendar.add_business_minutes(since, minutes)
    clock.next_update_risk_at = calendar.add_business_minutes(
        since, _risk_minutes(minutes, clock.at_risk_percent or DEFAULT_AT_RISK_PERCENT))


def on_public_reply(session, ticket: Ticket, comment) -> None:
    """An agent's public reply ends the first-response clock and restarts the next-update window;
    the badge may drop from at-risk (or a missed update) to ok."""
    if not comment.is_public or ticket.first_response_at is None:
        return
    author = session.get(User, comment.author_id) if comment.author_id else None
    if author is None or not author.is_staff:
        return
    clock = session.get(SlaClock, ticket.id)
    if clock is None:
        return
    at = comment.created_at or utcnow()
    if clock.next_update_minutes and ticket.status not in STOPPED:
        _next_update_from(get_calendar(session), clock, at)
    if ticket.sla_state == "at_risk":
        ticket.sla_state = _next_state(ticket.sla_state, _state_now(ticket, clock, at))


def on_priority_changed(session, ticket: Ticket, actor: Actor | None = None, at: dt.datetime | None = None) -> None:
    """Re-target from the same start: the new priority's targets plus the minutes already paused."""
    apply_sla(session, ticket, at)


def on_category_changed(session, ticket: Ticket, actor: Actor | None = None, at: dt.datetime | None = None) -> None:
    apply_sla(session, ticket, at)


def on_status_changed(session, ticket: Ticket, before: str | None, after: str, actor: Actor | None = None,
                      at: dt.datetime | None = None) -> None:
    """Pause while pending (paused business minutes move the due dates), stop on resolve, restart on reopen."""
    at = at or utcnow()
    clock = session.get(SlaClock, ticket.id)
    if clock is None:
        apply_sla(session, ticket, at)
        clock = session.get(SlaClock, ticket.id)
    if after == "pending" and before != "pending":
        ticket.sla_paused_at = at
    elif before == "pending" and after != "pending":
        if ticket.sla_paused_at is not None:
            paused = get_calendar(session).business_minutes_between(ticket.sla_paused_at, at)
            clock.paused_minutes = (clock.paused_minutes or 0) + max(paused, 0)
        ticket.sla_paused_at = None
        if clock.next_update_minutes and clock.next_update_due_at is not None and after not in STOPPED:
            _next_update_from(get_calendar(session), clock, at)  # the requester answered: a new window
    if after in STOPPED:
        clock.stopped_at = clock.stopped_at or at
    elif before in STOPPED:
        clock.stopped_at = None  # reopened: the clock runs again against the same due dates
    apply_sla(session, ticket, at, reset_targets=False)


def sla_state(ticket: Ticket, now: dt.datetime | None = None, calendar: BusinessCalendar | None = None
              ) -> tuple[str, int | None]:
    """("ok" | "at_risk" | "breached", business minutes left to the next due date) for queue badges.

    Minutes are negative once breached, frozen while pending, and None when no clock runs.
    At risk: the sweep flagged it, or less than a quarter of the target window is left.
    """
    if ticket.status in STOPPED or ticket.resolution_due_at is None:
        return ("breached" if ticket.sla_state == "breached" else "ok"), None
    now = now or utcnow()
    if calendar is None:
        from helpdesk.extensions import db

        calendar = get_calendar(db.session)
    at = ticket.sla_paused_at if ticket.status == "pending" and ticket.sla_paused_at else now
    due = ticket.resolution_due_at
    if ticket.first_response_at is None and ticket.first_response_due_at is not None:
        due = min(due, ticket.first_response_due_at)
    left = calendar.business_minutes_between(at, due)
    if at > due:
        return "breached", min(left, -1) if left == 0 else left
    if ticket.sla_state == "breached":  # e.g. the sweep found the next agent update overdue
        return "breached", left
    window = max(calendar.business_minutes_between(ticket.created_at, due), 1) if ticket.created_at else 0
    if ticket.sla_state == "at_risk" or (window and left <= window * (100 - DEFAULT_AT_RISK_PERCENT) / 100):
        return "at_risk", left
    return "ok", left


# --- the sweep -------------------------------------------------------------------------------

@dataclass
class SweepResult:
    at_risk: list[int] = field(default_factory=list)
    breached: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    mails: int = 0
    #: Of `breached`: the tickets whose next agent update is overdue.
    next_update_breached: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"at_risk": len(self.at_risk), "breached": len(self.breached),
                "escalated": len(self.escalated), "mails": self.mails,
                "next_update_breached": len(self.next_update_breached)}


def sweep(session, now: dt.datetime | None = None, *, notify: bool = True) -> SweepResult:
    """Mark at-risk and breached tickets (one UPDATE each), notify, auto-escalate; idempotent.

    A ticket moves ok → at_risk → breached once; each move is returned by its UPDATE exactly once,
    and the notices carry dedupe keys, so a second run (or two overlapping runs) sends nothing twice.
    """
    now = now or utcnow()
    result = SweepResult()
    running = Ticket.status.in_(RUNNING)
    fr_open = Ticket.first_response_at.is_(None)
    breached_stmt = (
        update(Ticket)
        .where(running, or_(Ticket.sla_state.is_(None), Ticket.sla_state != "breached"),
               or_(and_(fr_open, Ticket.first_response_due_at < now), Ticket.resolution_due_at < now))
        .values(sla_state="breached")
        .returning(Ticket.id)
        .execution_options(synchronize_session=False))
    result.breached = sorted(session.scalars(breached_stmt).all())
    at_risk_stmt = (
        update(Ticket)
        .where(running, or_(Ticket.sla_state.is_(None), Ticket.sla_state == "ok"),
               SlaClock.ticket_id == Ticket.id, SlaClock.stopped_at.is_(None),
               or_(and_(fr_open, SlaClock.first_response_risk_at <= now), SlaClock.resolution_risk_at <= now))
        .values(sla_state="at_risk")
        .returning(Ticket.id)
        .execution_options(synchronize_session=False))
    result.at_risk = sorted(session.scalars(at_risk_stmt).all())
    # The next agent update (a window restarted by each agent reply; pending tickets are not running).
    clock_running = and_(running, SlaClock.ticket_id == Ticket.id, SlaClock.stopped_at.is_(None))
    update_breached = sorted(session.scalars(
        update(Ticket)
        .where(clock_running, or_(Ticket.sla_state.is_(None), Ticket.sla_state != "breached"),
               SlaClock.next_update_due_at < now)
        .values(sla_state="breached").returning(Ticket.id)
        .execution_options(synchronize_session=False)).all())
    update_at_risk = sorted(session.scalars(
        update(Ticket)
        .where(clock_running, or_(Ticket.sla_state.is_(None), Ticket.sla_state == "ok"),
               SlaClock.next_update_risk_at <= now)
        .values(sla_state="at_risk").returning(Ticket.id)
        .execution_options(synchronize_session=False)).all())
    if update_breached or update_at_risk:
        result.breached = sorted(set(result.breached) | set(update_breached))
        result.at_risk = sorted((set(result.at_risk) | set(update_at_risk)) - set(update_breached))
        result.next_update_breached = update_breached
    if result.breached:
        _stamp(session, result.breached, breached_notified_at=now)
    if result.at_risk:
        _stamp(session, result.at_risk, at_risk_notified_at=now)
    if result.breached:
        result.escalated = _auto_escalate(session, result.breached, now)
    if notify and (result.at_risk or result.breached):
        from helpdesk.notify import service as notify_service

        result.mails += notify_service.notify_sla(session, "at_risk", result.at_risk, now)
        result.mails += notify_service.notify_sla(session, "breached", result.breached, now)
    session.commit()
    if result.at_risk or result.breached:
        logger.info("sla sweep: %s", result.as_dict())
    return result


def _stamp(session, ids: list[int], **values) -> None:
    for chunk in _chunks(ids, 5000):
        session.execute(update(SlaClock).where(SlaClock.ticket_id.in_(chunk)).values(**values)
                        .execution_options(synchronize_session=False))


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _auto_escalate(session, breached: list[int], now: dt.datetime) -> list[int]:
    ids: list[int] = []
    for chunk in _chunks(breached, 5000):
        ids += session.scalars(select(SlaClock.ticket_id).where(
            SlaClock.ticket_id.in_(chunk), SlaClock.auto_escalate, SlaClock.escalated_at.is_(None))).all()
    done = []
    actor = Actor.system("sla")
    for ticket_id in ids:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.tier != "L1":
            continue
        savepoint = session.begin_nested()
        try:
            tickets_service.escalate(session, ticket_id, "L2", "SLA超過のため自動エスカレーション", actor, commit=False)
            session.get(SlaClock, ticket_id).escalated_at = now
            savepoint.commit()
            done.append(ticket_id)
        except Exception as exc:  # one refused escalation must not stop the sweep
            savepoint.rollback()
            logger.warning("auto-escalation of ticket %s refused: %s", ticket_id, exc)
    return done


def backfill_clocks(session, batch: int = 2000) -> int:
    """Create clocks for open tickets that have none (bulk-imported or seeded rows); returns how many."""
    made, cache = 0, {}
    calendar = get_calendar(session)
    while True:
        ids = session.scalars(
            select(Ticket.id).where(Ticket.status.in_(RUNNING + ("pending",)),
                                    ~select(SlaClock.ticket_id).where(SlaClock.ticket_id == Ticket.id).exists())
            .order_by(Ticket.id).limit(batch)).all()
        if not ids:
            return made
        with session.no_autoflush:
            batch_tickets = session.scalars(select(Ticket).where(Ticket.id.in_(ids))).unique().all()
        for ticket in batch_tickets:
            keep = (ticket.first_response_due_at, ticket.resolution_due_at, ticket.sla_state)
            apply_sla(session, ticket, policy_cache=cache, calendar=calendar, known_new=True)
            if keep[0] is not None and keep[1] is not None:
                # Keep due dates already given by the source system; only thresholds are derived.
                ticket.first_response_due_at, ticket.resolution_due_at = keep[0], keep[1]
                ticket.sla_state = keep[2]
        session.commit()
        made += len(ids)


# --- compliance ------------------------------------------------------------------------------

def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a "YYYY-MM" month in Asia/Tokyo, as aware datetimes."""
    try:
        year, mon = (int(x) for x in month.split("-"))
        start = dt.datetime(year, mon, 1, tzinfo=TOKYO)
    except (ValueError, AttributeError) as exc:
        raise SlaError(_l("月は YYYY-MM の形式で指定してください（例: 2026-10）。")) from exc
    end = dt.datetime(year + (mon == 12), 1 if mon == 12 else mon + 1, 1, tzinfo=TOKYO)
    return start, end


def compliance(session, since: dt.datetime, until: dt.datetime, as_of: dt.datetime | None = None) -> list[dict]:
    """Share of tickets created in [since, until) answered and resolved within SLA, per role.

    First response counts tickets that got one, or are past its due date without one; resolution
    counts resolved tickets plus unresolved ones past *their resolution* due date, as of `as_of`
    (default now; the clock stops at the pause of a pending ticket and at closing). The badge
    (`sla_state`) is not used: it turns "breached" on a missed first response as well, and a ticket
    whose resolution is not due yet is not a resolution miss.
    """
    as_of = literal(as_of or utcnow(), UTCDateTime())
    clock_at = case((Ticket.closed_at.is_not(None), Ticket.closed_at),
                    (and_(Ticket.status == "pending", Ticket.sla_paused_at.is_not(None)), Ticket.sla_paused_at),
                    else_=as_of)
    fr_met = case((and_(Ticket.first_response_at.is_not(None),
                        Ticket.first_response_at <= Ticket.first_response_due_at), 1), else_=0)
    fr_counted = case((or_(Ticket.first_response_at.is_not(None), Ticket.first_response_due_at < clock_at), 1),
                      else_=0)
    res_met = case((and_(Ticket.resolved_at.is_not(None), Ticket.resolved_at <= Ticket.resolution_due_at), 1),
                   else_=0)
    res_counted = case((or_(Ticket.resolved_at.is_not(None), Ticket.resolution_due_at < clock_at), 1), else_=0)
    rows = session.execute(
        select(Ticket.role, func.count(), func.sum(fr_met), func.sum(fr_counted), func.sum(res_met),
               func.sum(res_counted))
        .where(Ticket.created_at >= since, Ticket.created_at < until, Ticket.first_response_due_at.is_not(None),
               Ticket.merged_into_id.is_(None))
        .group_by(Ticket.role).order_by(Ticket.role)).all()
    out = []
    for role, total, fm, fc, rm, rc in rows:
        fm, fc, rm, rc = int(fm or 0), int(fc or 0), int(rm or 0), int(rc or 0)
        out.append({"role": role or "unknown", "tickets": int(total),
                    "first_response_met": fm, "first_response_counted": fc,
                    "first_response_pct": round(100 * fm / fc, 1) if fc else None,
                    "resolution_met": rm, "resolution_counted": rc,
                    "resolution_pct": round(100 * rm / rc, 1) if rc else None})
    return out
