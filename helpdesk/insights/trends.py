"""Trend reports from a daily rollup table: volume by dimension, backlog, first-contact resolution, spikes.

`refresh_rollups` rebuilds `trend_rollups` with a handful of GROUP BY queries over the tickets
(run by a job, by `helpdesk insights refresh` and after imports); the reports then read a table of
days × values instead of scanning a million tickets.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import case, delete, func, insert, literal, select

from helpdesk.common import TOKYO, utcnow
from helpdesk.insights import spikes
from helpdesk.insights.models import RollupState, TrendRollup
from helpdesk.sla import service as sla_service
from helpdesk.accounts.models import Organisation
from helpdesk.tickets.models import Category, Ticket

DIMENSIONS = ("category", "role", "prefecture", "channel", "org")
CLI_DIMENSIONS = ("category", "role", "org")
PERIODS = ("week", "day")
SPIKE_DIMENSIONS = ("category", "role")
DONE_STATUSES = ("resolved", "closed")


def _tokyo_day(session, column):
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("Asia/Tokyo", column))
    return func.date(column, "+9 hours")


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _dimension_column(dimension: str):
    return {
        "all": literal(""),
        "category": func.coalesce(Category.code, "none"),
        "role": func.coalesce(Ticket.role, "unknown"),
        "prefecture": func.coalesce(Organisation.prefecture, "unknown"),
        "channel": Ticket.channel,
        "org": func.coalesce(Organisation.code, "none"),
    }[dimension]


def _joined(query):
    return (query.select_from(Ticket).outerjoin(Category, Category.id == Ticket.category_id)
            .outerjoin(Organisation, Organisation.id == Ticket.organisation_id))


def refresh_rollups(session) -> dict:
    """Rebuild the daily rollup from the tickets; commits. Returns row and ticket counts."""
    newest_change = session.scalar(select(func.max(Ticket.updated_at)))
    total = session.scalar(select(func.count(Ticket.id))) or 0
    created_day = _tokyo_day(session, Ticket.created_at)
    done_at = func.coalesce(Ticket.resolved_at, Ticket.closed_at)
    resolved_day = _tokyo_day(session, done_at)
    is_done = case((Ticket.status.in_(DONE_STATUSES), 1), else_=0)
    fcr = case((Ticket.resolved_on_first_contact.is_(True), 1), else_=0)
    rows: list[dict] = []
    for dimension in ("all",) + DIMENSIONS:
        value = _dimension_column(dimension)
        cells: dict[tuple, dict] = defaultdict(lambda: {"created": 0, "resolved": 0, "done": 0, "first_contact": 0})
        q1 = _joined(select(created_day, value, func.count(Ticket.id), func.sum(is_done), func.sum(fcr))).group_by(
            created_day, value)
        for day, val, n, done, first in session.execute(q1):
            cell = cells[(_as_date(day), str(val)[:64])]
            cell.update(created=n, done=int(done or 0), first_contact=int(first or 0))
        q2 = _joined(select(resolved_day, value, func.count(Ticket.id)).where(done_at.is_not(None))).group_by(
            resolved_day, value)
        for day, val, n in session.execute(q2):
            cells[(_as_date(day), str(val)[:64])]["resolved"] = n
        rows.extend({"day": day, "week": day - dt.timedelta(days=day.weekday()), "dimension": dimension,
                     "value": val, **cell} for (day, val), cell in cells.items())
    session.execute(delete(TrendRollup))
    for start in range(0, len(rows), 5000):
        session.execute(insert(TrendRollup), rows[start:start + 5000])
    state = session.get(RollupState, 1) or RollupState(id=1)
    state.refreshed_at, state.tickets_updated_at, state.tickets = utcnow(), newest_change, total
    session.add(state)
    session.commit()
    return {"rows": len(rows), "tickets": total}


def rollup_state(session) -> RollupState | None:
    return session.get(RollupState, 1)


def ensure_rollups(session) -> bool:
    """Refresh the rollup when tickets changed since the last refresh; True if it was rebuilt."""
    state = rollup_state(session)
    newest = session.scalar(select(func.max(Ticket.updated_at)))
    total = session.scalar(select(func.count(Ticket.id))) or 0
    if state is not None and state.tickets == total and state.tickets_updated_at == newest:
        return False
    refresh_rollups(session)
    return True


def period_start(day: dt.date, period: str) -> dt.date:
    return day - dt.timedelta(days=day.weekday()) if period == "week" else day


def _periods(since: dt.date, until: dt.date, period: str) -> list[dt.date]:
    step = dt.timedelta(days=7 if period == "week" else 1)
    out, cur = [], period_start(since, period)
    while cur <= until:
        out.append(cur)
        cur += step
    return out


def default_window(period: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    today = today or utcnow().astimezone(TOKYO).date()
    return (today - dt.timedelta(weeks=12) if period == "week" else today - dt.timedelta(days=30)), today


def volume(session, dimension: str, period: str = "week", since: dt.date | None = None,
           until: dt.date | None = None, measure: str = "created", limit: int | None = None) -> dict:
    """{"periods": [...], "series": {value: [count per period]}, "totals": {value: n}} from the rollup.

    `limit` keeps the values with the largest totals (chosen in SQL, for the many organisations).
    """
    if dimension not in ("all",) + DIMENSIONS or period not in PERIODS:
        raise ValueError("unknown dimension or period")
    since, until = since or default_window(period)[0], until or default_window(period)[1]
    column = getattr(TrendRollup, measure)
    bucket = TrendRollup.week if period == "week" else TrendRollup.day
    where = [TrendRollup.dimension == dimension, TrendRollup.day >= since, TrendRollup.day <= until]
    query = select(bucket, TrendRollup.value, func.sum(column)).where(*where)
    if limit:
        top = (select(TrendRollup.value).where(*where).group_by(TrendRollup.value)
               .order_by(func.sum(column).desc(), TrendRollup.value).limit(limit))
        query = query.where(TrendRollup.value.in_(top.scalar_subquery()))
    data = session.execute(query.group_by(bucket, TrendRollup.value)).all()
    periods = _periods(since, until, period)
    index = {p: i for i, p in enumerate(periods)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(periods))
    for day, value, n in data:
        i = index.get(period_start(_as_date(day), period))
        if i is not None:
            series[value][i] += int(n or 0)
    totals = {k: sum(v) for k, v in series.items()}
    ordered = dict(sorted(series.items(), key=lambda kv: (-totals[kv[0]], kv[0])))
    return {"periods": [p.isoformat() for p in periods], "series": ordered, "totals": totals}


def trend_rows(session, by: str = "category", period: str = "week", since: dt.date | None = None,
               until: dt.date | None = None) -> list[dict]:
    """Flat rows for the CLI/CSV: period, key, count (zero cells left out)."""
    data = volume(session, by, period, since, until)
    rows = []
    for i, p in enumerate(data["periods"]):
        for key, counts in data["series"].items():
            if counts[i]:
                rows.append({"period": p, "by": by, "key": key, "count": counts[i]})
    return rows


def backlog(session, period: str = "week", since: dt.date | None = None, until: dt.date | None = None) -> dict:
    """Open tickets at the end of each period (created so far minus resolved so far)."""
    since, until = since or default_window(period)[0], until or default_window(period)[1]
    base = session.execute(select(func.coalesce(func.sum(TrendRollup.created), 0),
                                  func.coalesce(func.sum(TrendRollup.resolved), 0))
                           .where(TrendRollup.dimension == "all", TrendRollup.day < period_start(since, period))).one()
    created = volume(session, "all", period, since, until, "created")
    resolved = volume(session, "all", period, since, until, "resolved")
    c = created["series"].get("", [0] * len(created["periods"]))
    r = resolved["series"].get("", [0] * len(created["periods"]))
    open_now, out = int(base[0]) - int(base[1]), []
    for i, p in enumerate(created["periods"]):
        open_now += c[i] - r[i]
        out.append({"period": p, "created": c[i], "resolved": r[i], "open": open_now})
    return {"periods": created["periods"], "rows": out}


def first_contact_resolution(session, since: dt.date | None = None, until: dt.date | None = None) -> list[dict]:
    """Per role: resolved tickets, of which resolved on first contact, and the rate."""
    since, until = since or default_window("week")[0], until or default_window("week")[1]
    data = session.execute(select(TrendRollup.value, func.sum(TrendRollup.created), func.sum(TrendRollup.done),
                                  func.sum(TrendRollup.first_contact))
                           .where(TrendRollup.dimension == "role", TrendRollup.day >= since, TrendRollup.day <= until)
                           .group_by(TrendRollup.value).order_by(TrendRollup.value)).all()
    return [{"role": role, "created": int(c or 0), "resolved": int(d or 0), "first_contact": int(f or 0),
             "rate": (int(f or 0) / int(d)) if d else None} for role, c, d, f in data]


def spike_report(session, period: str = "week", until: dt.date | None = None) -> list[spikes.Spike]:
    """Spike decisions for every category and role: the current period against its own baseline."""
    until = until or utcnow().astimezone(TOKYO).date()
    span = spikes.BASELINE_PERIODS + 1
    since = period_start(until, period) - dt.timedelta(days=(7 if period == "week" else 1) * (span - 1))
    results = []
    for dimension in SPIKE_DIMENSIONS:
        data = volume(session, dimension, period, since, until)
        for key, counts in data["series"].items():
            results.append(spikes.evaluate(f"{dimension}:{key}", counts))
    results.sort(key=lambda s: (not s.flagged, -s.z, str(s.key)))
    return results


def sla_compliance(session, since: dt.date | None = None, until: dt.date | None = None):
    """SLA compliance per role (`sla.service.compliance`) over the window (default: this week)."""
    since, until = since or default_window("week")[0], until or default_window("week")[1]
    start = dt.datetime(since.year, since.month, since.day, tzinfo=TOKYO)
    end = dt.datetime(until.year, until.month, until.day, tzinfo=TOKYO) + dt.timedelta(days=1)
    return sla_service.compliance(session, start, end)
