"""Business-time arithmetic on the desk's calendar (Asia/Tokyo, Japanese holidays, year-end closure).

Framework-free. Times go in and come out as aware datetimes; a naive datetime is refused
(``ValueError``) because guessing its zone silently shifts every due date by nine hours.

How it stays fast: per calendar year, the open intervals of each day (in microseconds since local
midnight) and a running total of open time before each day are built once and cached. Then
"business time between a and b" is two lookups plus the totals of the whole years in between, and
"add N minutes" is a bisect over the day totals of the years it crosses. Nothing loops minute by
minute, and long spans cost one step per calendar year.

Sub-minute parts are kept, never rounded: ``add_business_minutes`` moves by exactly ``n * 60``
seconds of open time (so 09:00:30 + 1 min = 09:01:30), and ``business_minutes_between`` returns
whole minutes, truncated toward zero, so ``between(t, add(t, n)) == n`` for every t and n >= 0.
"""
from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")
US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
#: How far next_open() looks ahead before deciding the calendar never opens.
_MAX_SEARCH_DAYS = 3 * 366

Interval = tuple[dt.time, dt.time]


def _default_holiday() -> Callable[[dt.date], bool]:
    import jpholiday

    # jpholiday includes 振替休日 (substitute holidays) and 国民の休日 (sandwiched days).
    return lambda day: bool(jpholiday.is_holiday(day))


def default_hours(start: dt.time = dt.time(9), end: dt.time = dt.time(18),
                  saturday: Interval | None = None) -> dict[int, list[Interval]]:
    """Weekday desk hours (Mon–Fri start–end), plus Saturday hours when given."""
    hours = {weekday: [(start, end)] for weekday in range(5)}
    if saturday is not None:
        hours[5] = [saturday]
    return hours


def is_year_end(day: dt.date) -> bool:
    """12/29 – 1/3: the customary year-end closure of Japanese offices."""
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


@dataclass
class _Year:
    #: open intervals per day of the year, microseconds since local midnight
    days: list[tuple[tuple[int, int], ...]]
    #: cum[i] = open microseconds before day i (cum[0] == 0, cum[-1] == year total)
    cum: list[int]


def _to_us(value: dt.time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * US_PER_SECOND + value.microsecond


class BusinessCalendar:
    """Desk hours per weekday, public holidays, year-end closure and custom closed days.

    :param hours: weekday (0 = Monday … 6 = Sunday) → list of (start, end) local times; intervals of
        one day must not overlap. Default: 9:00–18:00 Monday to Friday.
    :param closed_dates: extra closed days (e.g. a system-wide maintenance day).
    :param holidays: ``date -> bool``; default Japanese public holidays (jpholiday). Pass
        ``lambda d: False`` for a desk that works on holidays.
    :param year_end: close 12/29 – 1/3.
    """

    def __init__(self, hours: Mapping[int, Iterable[Interval]] | None = None,
                 closed_dates: Iterable[dt.date] | None = None,
                 holidays: Callable[[dt.date], bool] | None = None, year_end: bool = True,
                 tz: dt.tzinfo = TOKYO):
        self.tz = tz
        self.hours: dict[int, tuple[tuple[int, int], ...]] = {}
        for weekday, intervals in (default_hours() if hours is None else hours).items():
            if not 0 <= int(weekday) <= 6:
                raise ValueError(f"weekday must be 0..6, got {weekday!r}")
            spans = sorted((_to_us(start), _to_us(end)) for start, end in intervals)
            for (s, e) in spans:
                if e <= s:
                    raise ValueError(f"desk hours end before they start on weekday {weekday}")
            for (s1, e1), (s2, _e2) in zip(spans, spans[1:]):
                if s2 < e1:
                    raise ValueError(f"desk hours overlap on weekday {weekday}")
            self.hours[int(weekday)] = tuple(spans)
        self.closed_dates = frozenset(closed_dates or ())
        self.holidays = holidays if holidays is not None else _default_holiday()
        self.year_end = year_end
        self._years: dict[int, _Year] = {}

    # --- per-day data ----------------------------------------------------------------------

    def is_business_day(self, day: dt.date) -> bool:
        """True when the desk opens at all that day."""
        return bool(self.day_intervals(day))

    def day_intervals(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        return self._year(day.year).days[day.timetuple().tm_yday - 1]

    def _compute_day(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        spans = self.hours.get(day.weekday(), ())
        if not spans or day in self.closed_dates or (self.year_end and is_year_end(day)) \
                or self.holidays(day):
            return ()
        return spans

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        first = dt.date(year, 1, 1)
        count = (dt.date(year + 1, 1, 1) - first).days
        days, cum, total = [], [0], 0
        for i in range(count):
            spans = self._compute_day(first + dt.timedelta(days=i))
            days.append(spans)
            total += sum(e - s for s, e in spans)
            cum.append(total)
        built = _Year(days, cum)
        self._years[year] = built
        return built

    # --- conversions -----------------------------------------------------------------------

    def _local(self, t: dt.datetime) -> dt.datetime:
        if not isinstance(t, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(t).__name__}")
        if t.tzinfo is None or t.tzinfo.utcoffset(t) is None:
            raise ValueError("naive datetime: pass an aware datetime (e.g. with tzinfo=ZoneInfo('Asia/Tokyo'))")
        return t.astimezone(self.tz)

    def _offset_in_year(self, local: dt.datetime) -> int:
        """Open microseconds from local Jan 1 00:00 of local.year up to `local`."""
        year = self._year(local.year)
        index = local.timetuple().tm_yday - 1
        us = _to_us(local.timetz())
        done = year.cum[index]
        for s, e in year.days[index]:
            if us <= s:
                break
            done += min(us, e) - s
        return done

    def _at(self, year: int, day_index: int, us: int) -> dt.datetime:
        day = dt.date(year, 1, 1) + dt.timedelta(days=day_index)
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return midnight + dt.timedelta(microseconds=us)

    # --- public API ------------------------------------------------------------------------

    def is_open(self, t: dt.datetime) -> bool:
        """True if the desk is open at `t` (an interval includes its start, not its end)."""
        local = self._local(t)
        us = _to_us(local.timetz())
        return any(s <= us < e for s, e in self.day_intervals(local.date()))

    def next_open(self, t: dt.datetime) -> dt.datetime:
        """`t` itself when open, else the next opening time (Asia/Tokyo)."""
        local = self._local(t)
        us = _to_us(local.timetz())
        for s, e in self.day_intervals(local.date()):
            if us < e:
                return local if us >= s else self._at(local.year, local.timetuple().tm_yday - 1, s)
        day = local.date()
        for _ in range(_MAX_SEARCH_DAYS):
            day += dt.timedelta(days=1)
            spans = self.day_intervals(day)
            if spans:
                return self._at(day.year, day.timetuple().tm_yday - 1, spans[0][0])
        raise ValueError("the calendar has no open hours in the next three years")

    def business_seconds_between(self, a: dt.datetime, b: dt.datetime) -> float:
        """Open time from a to b in seconds (negative when a > b)."""
        return self._business_us_between(a, b) / US_PER_SECOND

    def _business_us_between(self, a: dt.datetime, b: dt.datetime) -> int:
        la, lb = self._local(a), self._local(b)
        if la > lb:
            return -self._business_us_between(lb, la)
        total = -self._offset_in_year(la)
        for year in range(la.year, lb.year):
            total += self._year(year).cum[-1]
        return total + self._offset_in_year(lb)

    def business_minutes_between(self, a: dt.datetime, b: dt.datetime) -> int:
        """Whole open minutes from a to b, truncated toward zero; a > b gives the negated count.

        So ``between(a, b) == -between(b, a)``, and 0 when both lie in one closed stretch.
        """
        us = self._business_us_between(a, b)
        return us // US_PER_MINUTE if us >= 0 else -((-us) // US_PER_MINUTE)

    def add_business_minutes(self, t: dt.datetime, n: int) -> dt.datetime:
        """The instant `n` open minutes after `t` (Asia/Tokyo); outside hours counting starts at the next opening.

        The result is the earliest instant at which n minutes have accrued, so a target that ends
        exactly at closing time is that closing time (17:00 + 60 min on a 9–18 day = 18:00), and
        ``n == 0`` gives ``next_open(t)``. Negative n is refused.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be an integer number of minutes")
        if n < 0:
            raise ValueError("n must be >= 0")
        local = self._local(t)
        if n == 0:
            return self.next_open(local)
        target = self._offset_in_year(local) + n * US_PER_MINUTE
        year_no = local.year
        for _ in range(200):  # years; a calendar open at least an hour a year never needs this many
            year = self._year(year_no)
            if target <= year.cum[-1]:
                # day i: cum[i] < target <= cum[i+1]
                index = bisect.bisect_left(year.cum, target) - 1
                remaining = target - year.cum[index]
                for s, e in year.days[index]:
                    if remaining <= e - s:
                        return self._at(year_no, index, s + remaining)
                    remaining -= e - s
                raise AssertionError("inconsistent calendar cache")  # pragma: no cover
            target -= year.cum[-1]
            year_no += 1
        raise ValueError("the calendar has too little open time to add that many minutes")

    def daily_minutes(self, day: dt.date) -> int:
        """Open minutes on `day` (0 when closed)."""
        return sum(e - s for s, e in self.day_intervals(day)) // US_PER_MINUTE


def standard_calendar(saturday: bool = False, closed_dates: Iterable[dt.date] = ()) -> BusinessCalendar:
    """The VDS desk: 9:00–18:00 on weekdays (Saturday 9:00–17:00 when enabled), JP holidays, year end."""
    return BusinessCalendar(default_hours(saturday=(dt.time(9), dt.time(17)) if saturday else None),
                            closed_dates=closed_dates)
