"""The monthly BPO client report: volumes, SLA attainment, response times, FCR, CSAT, backlog.

Every figure is per role (municipality, clinic, wholesaler) plus the total, for one calendar month
in Asia/Tokyo. Response times are in business minutes of the desk calendar (what the SLA counts).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select

from helpdesk.common import ORG_KINDS, TOKYO, csv_safe
from helpdesk.insights import service as insights_service
from helpdesk.sla.service import SlaError, compliance, get_calendar, month_bounds
from helpdesk.tickets.models import CHANNELS, Category, Ticket
from helpdesk.tickets.timelog import month_totals

ROLES = ORG_KINDS + ("unknown",)
TOTAL = "all"


class ReportError(ValueError):
    """A refused report request (bad month); the message is shown to the user."""


@dataclass
class RoleFigures:
    role: str
    received: int = 0
    by_channel: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CHANNELS})
    first_response_pct: float | None = None
    first_response_met: int = 0
    first_response_counted: int = 0
    resolution_pct: float | None = None
    resolution_met: int = 0
    resolution_counted: int = 0
    avg_first_response_min: float | None = None
    p90_first_response_min: float | None = None
    avg_handle_seconds: float | None = None
    calls: int = 0
    fcr_pct: float | None = None
    csat_avg: float | None = None
    csat_count: int = 0
    backlog_end: int = 0
    top_categories: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class MonthlyReport:
    month: str
    start: dt.datetime
    end: dt.datetime
    roles: dict[str, RoleFigures]
    recurring: list[dict]
    generated_at: dt.datetime
    #: Time tracking: minutes logged with replies/notes this month, total / per agent / per organisation.
    time: dict = field(default_factory=dict)

    @property
    def last_day(self) -> dt.date:
        return (self.end - dt.timedelta(days=1)).date()

    @property
    def total(self) -> RoleFigures:
        return self.roles[TOTAL]

    def role_rows(self) -> list[RoleFigures]:
        return [self.roles[r] for r in ROLES + (TOTAL,) if r in self.roles and (r != "unknown" or self.roles[r].received)]


def parse_month(value: str | None, today: dt.date | None = None) -> str:
    """"YYYY-MM"; empty means the previous month (Asia/Tokyo)."""
    if not value:
        today = today or dt.datetime.now(TOKYO).date()
        first = today.replace(day=1) - dt.timedelta(days=1)
        return f"{first.year:04d}-{first.month:02d}"
    value = value.strip()
    try:
        month_bounds(value)
    except SlaError as exc:
        raise ReportError(str(exc)) from exc
    year, mon = (int(x) for x in value.split("-"))
    if not (2000 <= year <= 2100 and 1 <= mon <= 12):
        raise ReportError(_l("月は 2000-01〜2100-12 の範囲で指定してください。"))
    return f"{year:04d}-{mon:02d}"


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)])


def monthly_report(session, month: str, now: dt.datetime | None = None) -> MonthlyReport:
    """Compute the report for "YYYY-MM" as known at `now` (default: now).

    An unresolved ticket counts as a resolution-SLA miss only once its resolution due date has
    passed at `now` (a missed first response alone is not a resolution miss).
    """
    month = parse_month(month)
    now = now or dt.datetime.now(TOKYO)
    start, end = month_bounds(month)
    figures = {r: RoleFigures(r) for r in ROLES + (TOTAL,)}
    in_month = and_(Ticket.created_at >= start, Ticket.created_at < end, Ticket.merged_into_id.is_(None))
    role_col = func.coalesce(Ticket.role, "unknown")

    for role, channel, n in session.execute(select(role_col, Ticket.channel, func.count()).where(in_month)
                                            .group_by(role_col, Ticket.channel)):
        for key in (role if role in figures else "unknown", TOTAL):
            figures[key].received += n
            figures[key].by_channel[channel] = figures[key].by_channel.get(channel, 0) + n

    for row in compliance(session, start, end, as_of=now):
        for key in (row["role"] if row["role"] in figures else "unknown", TOTAL):
            f = figures[key]
            f.first_response_met += row["first_response_met"]
            f.first_response_counted += row["first_response_counted"]
            f.resolution_met += row["resolution_met"]
            f.resolution_counted += row["resolution_counted"]

    calendar = get_calendar(session)
    waits: dict[str, list[float]] = {k: [] for k in figures}
    for role, created, first in session.execute(
            select(role_col, Ticket.created_at, Ticket.first_response_at)
            .where(in_month, Ticket.first_response_at.is_not(None))):
        minutes = max(calendar.business_seconds_between(created, first), 0) / 60
        waits[role if role in waits else "unknown"].append(minutes)
        waits[TOTAL].append(minutes)

    phone = and_(in_month, Ticket.channel == "phone")
    for role, calls, handle, fcr in session.execute(
            select(role_col, func.count(), func.avg(Ticket.handle_seconds),
                   func.sum(func.cast(Ticket.resolved_on_first_contact, _int_type())))
            .where(phone).group_by(role_col)):
        for key in (role if role in figures else "unknown",):
            f = figures[key]
            f.calls, f.avg_handle_seconds = int(calls), float(handle) if handle is not None else None
            f.fcr_pct = _pct(int(fcr or 0), int(calls))
    total_calls = session.execute(select(func.count(), func.avg(Ticket.handle_seconds),
                                         func.sum(func.cast(Ticket.resolved_on_first_contact, _int_type())))
                                  .where(phone)).one()
    figures[TOTAL].calls = int(total_calls[0])
    figures[TOTAL].avg_handle_seconds = float(total_calls[1]) if total_calls[1] is not None else None
    figures[TOTAL].fcr_pct = _pct(int(total_calls[2] or 0), int(total_calls[0]))

    resolved_in_month = and_(Ticket.resolved_at >= start, Ticket.resolved_at < end, Ticket.csat_score.is_not(None))
    for role, avg, n in session.execute(select(role_col, func.avg(Ticket.csat_score), func.count())
                                        .where(resolved_in_month).group_by(role_col)):
        f = figures[role if role in figures else "unknown"]
        f.csat_avg, f.csat_count = round(float(avg), 2), int(n)
    avg, n = session.execute(select(func.avg(Ticket.csat_score), func.count()).where(resolved_in_month)).one()
    figures[TOTAL].csat_avg, figures[TOTAL].csat_count = (round(float(avg), 2) if avg is not None else None), int(n)

    # Backlog at month end: created before the end, not resolved or closed by then.
    backlog = and_(Ticket.created_at < end, Ticket.merged_into_id.is_(None),
                   or_(Ticket.resolved_at.is_(None), Ticket.resolved_at >= end),
                   or_(Ticket.closed_at.is_(None), Ticket.closed_at >= end))
    for role, n in session.execute(select(role_col, func.count()).where(backlog).group_by(role_col)):
        figures[role if role in figures else "unknown"].backlog_end += n
        figures[TOTAL].backlog_end += n

    cat_rows = session.execute(select(role_col, Category.code, func.count())
                               .join(Category, Category.id == Ticket.category_id)
                               .where(in_month).group_by(role_col, Category.code)).all()
    per_role: dict[str, dict[str, int]] = {}
    for role, code, n in cat_rows:
        for key in (role if role in figures else "unknown", TOTAL):
            per_role.setdefault(key, {}).setdefault(code, 0)
            per_role[key][code] += n
    for key, counts in per_role.items():
        figures[key].top_categories = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]

    for key, f in figures.items():
        f.first_response_pct = _pct(f.first_response_met, f.first_response_counted)
        f.resolution_pct = _pct(f.resolution_met, f.resolution_counted)
        if waits[key]:
            f.avg_first_response_min = round(sum(waits[key]) / len(waits[key]), 1)
            f.p90_first_response_min = round(_p90(waits[key]), 1)
    return MonthlyReport(month, start, end, figures, _recurring(session, start, end), now,
                         month_totals(session, start, end))


def _int_type():
    from sqlalchemy import Integer

    return Integer()


def _recurring(session, start: dt.datetime, end: dt.datetime, limit: int = 5) -> list[dict]:
    """The largest recurring-issue groups seen this month."""
    out = []
    for g in insights_service.list_groups(session):
        if g.last_seen is not None and g.last_seen < start:
            continue
        if g.first_seen is not None and g.first_seen >= end:
            continue
        out.append({"label": g.label, "size": g.size, "trend": g.trend, "top_terms": list(g.top_terms or [])[:5]})
        if len(out) >= limit:
            break
    return out


CSV_COLUMNS = ["month", "role", "received", *(f"received_{c}" for c in CHANNELS), "first_response_within_sla_pct",
               "first_response_met", "first_response_counted", "resolution_within_sla_pct", "resolution_met",
               "resolution_counted", "avg_first_response_business_min", "p90_first_response_business_min",
               "calls", "avg_handle_seconds", "fcr_pct", "csat_avg", "csat_count", "backlog_end", "top_categories"]


def report_rows(report: MonthlyReport) -> list[dict]:
    rows = []
    for f in report.role_rows():
        row = {"month": report.month, "role": f.role, "received": f.received}
        row.update({f"received_{c}": f.by_channel.get(c, 0) for c in CHANNELS})
        row.update({"first_response_within_sla_pct": f.first_response_pct, "first_response_met": f.first_response_met,
                    "first_response_counted": f.first_response_counted,
                    "resolution_within_sla_pct": f.resolution_pct, "resolution_met": f.resolution_met,
                    "resolution_counted": f.resolution_counted,
                    "avg_first_response_business_min": f.avg_first_response_min,
                    "p90_first_response_business_min": f.p90_first_response_min, "calls": f.calls,
                    "avg_handle_seconds": round(f.avg_handle_seconds, 1) if f.avg_handle_seconds is not None else None,
                    "fcr_pct": f.fcr_pct, "csat_avg": f.csat_avg, "csat_count": f.csat_count,
                    "backlog_end": f.backlog_end,
                    "top_categories": " ".join(f"{c}:{n}" for c, n in f.top_categories)})
        rows.append(row)
    return rows


_CHANNEL_WORDS = {"phone": _l("電話"), "web": _l("Web"), "email": _l("メール"), "api": _l("API")}
#: Header words of the CSV for people (the page's column names; durations say their unit).
CSV_HEADER_WORDS = {
    "month": _l("対象月"), "role": _l("利用者種別"), "received": _l("受付件数"),
    **{f"received_{c}": _l("受付件数（%(channel)s）", channel=_CHANNEL_WORDS.get(c, c)) for c in CHANNELS},
    "first_response_within_sla_pct": _l("初回応答 SLA達成率（%）"),
    "first_response_met": _l("初回応答 SLA達成件数"), "first_response_counted": _l("初回応答 SLA対象件数"),
    "resolution_within_sla_pct": _l("解決 SLA達成率（%）"),
    "resolution_met": _l("解決 SLA達成件数"), "resolution_counted": _l("解決 SLA対象件数"),
    "avg_first_response_business_min": _l("初回応答 平均（営業時間・分）"),
    "p90_first_response_business_min": _l("初回応答 p90（営業時間・分）"),
    "calls": _l("通話件数"), "avg_handle_seconds": _l("平均通話処理時間（秒）"), "fcr_pct": _l("一次解決率（%）"),
    "csat_avg": _l("満足度（平均）"), "csat_count": _l("満足度（件数）"), "backlog_end": _l("月末の未解決件数"),
    "top_categories": _l("多いカテゴリ（コード:件数）"),
}


def report_csv(report: MonthlyReport, *, translated: bool = False, role_label=None) -> str:
    """CSV (UTF-8 with BOM so Excel in Japan opens it correctly), formula-safe cells.

    `translated=True` (the web download): header words in the current language (Japanese by default,
    English for a user who chose English) and `role_label(role)` for the role column; the CLI keeps
    the machine keys (`month,role,received,…`) for scripts.
    """
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([str(CSV_HEADER_WORDS[c]) for c in CSV_COLUMNS] if translated else CSV_COLUMNS)
    for row in report_rows(report):
        if translated and role_label is not None:
            row["role"] = role_label(row["role"])
        writer.writerow([csv_safe("" if row.get(c) is None else row[c]) for c in CSV_COLUMNS])
    return buf.getvalue()


def report_json(report: MonthlyReport) -> dict:
    return {"month": report.month, "start": report.start.isoformat(), "end": report.end.isoformat(),
            "roles": report_rows(report), "recurring": report.recurring, "time": report.time}
