"""Business-minute arithmetic on the Japanese desk calendar (pure, no app needed)."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from helpdesk.sla.calendar import TOKYO, BusinessCalendar, default_hours, standard_calendar

UTC = dt.timezone.utc


def jst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


@pytest.fixture(scope="module")
def cal():
    return standard_calendar()


def test_within_one_day(cal):
    assert cal.add_business_minutes(jst(2026, 10, 5, 9), 60) == jst(2026, 10, 5, 10)
    assert cal.business_minutes_between(jst(2026, 10, 5, 9), jst(2026, 10, 5, 18)) == 540


def test_ending_exactly_at_closing_time_stays_that_day(cal):
    assert cal.add_business_minutes(jst(2026, 10, 5, 17), 60) == jst(2026, 10, 5, 18)


def test_across_a_weekend(cal):
    # Friday 2026-10-09 17:00 + 120 min → Monday 10-12 is 体育の日/スポーツの日 → Tuesday 10:00.
    assert cal.add_business_minutes(jst(2026, 10, 9, 17), 120) == jst(2026, 10, 13, 10)
    # A plain weekend: Friday 2026-10-16 17:30 + 60 → Monday 10-19 09:30.
    assert cal.add_business_minutes(jst(2026, 10, 16, 17, 30), 60) == jst(2026, 10, 19, 9, 30)
    assert cal.business_minutes_between(jst(2026, 10, 16, 17, 30), jst(2026, 10, 19, 9, 30)) == 60


def test_national_holidays(cal):
    # 2026-11-03 (Tue) 文化の日: Monday 17:00 + 120 min → Wednesday 10:00.
    assert cal.add_business_minutes(jst(2026, 11, 2, 17), 120) == jst(2026, 11, 4, 10)
    # 2026-11-23 (Mon) 勤労感謝の日: Friday 11-20 17:00 + 120 → Tuesday 11-24 10:00.
    assert cal.add_business_minutes(jst(2026, 11, 20, 17), 120) == jst(2026, 11, 24, 10)
    assert not cal.is_business_day(dt.date(2026, 11, 3))
    assert not cal.is_business_day(dt.date(2026, 11, 23))


def test_substitute_holiday(cal):
    # 2026-05-03 憲法記念日 is a Sunday: 5/6 (Wed) is the substitute holiday (振替休日).
    assert not cal.is_business_day(dt.date(2026, 5, 6))
    # 5/1 (Fri) 17:00 + 120: 5/4, 5/5, 5/6 are holidays → Thursday 5/7 10:00.
    assert cal.add_business_minutes(jst(2026, 5, 1, 17), 120) == jst(2026, 5, 7, 10)
    # 2025-11-24 (Mon) substitutes 勤労感謝の日 on Sunday 11-23.
    assert not cal.is_business_day(dt.date(2025, 11, 24))


def test_year_end_closure(cal):
    assert cal.add_business_minutes(jst(2026, 12, 28, 17), 120) == jst(2027, 1, 4, 10)
    for day in (29, 30, 31):
        assert not cal.is_business_day(dt.date(2026, 12, day))
    assert cal.business_minutes_between(jst(2026, 12, 28, 17), jst(2027, 1, 4, 10)) == 120
    no_closure = BusinessCalendar(default_hours(), holidays=lambda d: False, year_end=False)
    assert no_closure.add_business_minutes(jst(2026, 12, 28, 17), 120) == jst(2026, 12, 29, 10)


def test_custom_closed_day():
    closed = BusinessCalendar(default_hours(), closed_dates={dt.date(2026, 10, 6)})
    assert closed.add_business_minutes(jst(2026, 10, 5, 17), 120) == jst(2026, 10, 7, 10)


def test_start_outside_hours_counts_from_next_opening(cal):
    assert cal.add_business_minutes(jst(2026, 10, 5, 6, 15), 30) == jst(2026, 10, 5, 9, 30)
    assert cal.add_business_minutes(jst(2026, 10, 10, 12), 30) == jst(2026, 10, 13, 9, 30)  # Saturday
    assert cal.add_business_minutes(jst(2026, 10, 5, 20), 0) == jst(2026, 10, 6, 9)
    assert cal.next_open(jst(2026, 10, 5, 10, 7)) == jst(2026, 10, 5, 10, 7)
    assert cal.next_open(jst(2026, 12, 28, 18)) == jst(2027, 1, 4, 9)


def test_split_hours_with_lunch_break_and_continuous_hours():
    split = BusinessCalendar({d: [(dt.time(9), dt.time(12)), (dt.time(13), dt.time(18))] for d in range(5)})
    assert split.add_business_minutes(jst(2026, 10, 5, 11, 30), 60) == jst(2026, 10, 5, 13, 30)
    assert not split.is_open(jst(2026, 10, 5, 12, 30))
    assert split.daily_minutes(dt.date(2026, 10, 5)) == 480
    # The standard desk has no lunch break: 11:30 + 60 = 12:30, open through noon.
    continuous = standard_calendar()
    assert continuous.add_business_minutes(jst(2026, 10, 5, 11, 30), 60) == jst(2026, 10, 5, 12, 30)
    assert continuous.is_open(jst(2026, 10, 5, 12, 30))


def test_saturday_option():
    sat = standard_calendar(saturday=True)
    assert sat.is_open(jst(2026, 10, 17, 10))
    assert sat.add_business_minutes(jst(2026, 10, 16, 17), 120) == jst(2026, 10, 17, 10)
    assert not standard_calendar().is_open(jst(2026, 10, 17, 10))


def test_between_reversed_is_negative(cal):
    a, b = jst(2026, 10, 5, 10), jst(2026, 10, 6, 10)
    assert cal.business_minutes_between(a, b) == 540
    assert cal.business_minutes_between(b, a) == -540
    # Both points inside one closed stretch: zero.
    assert cal.business_minutes_between(jst(2026, 10, 10, 1), jst(2026, 10, 11, 23)) == 0


def test_seconds_are_kept_not_rounded(cal):
    assert cal.add_business_minutes(jst(2026, 10, 5, 9, 0, 30), 1) == jst(2026, 10, 5, 9, 1, 30)
    assert cal.business_minutes_between(jst(2026, 10, 5, 9, 0, 30), jst(2026, 10, 5, 9, 2, 29)) == 1


def test_aware_in_and_out_naive_refused(cal):
    utc_start = dt.datetime(2026, 10, 5, 0, 0, tzinfo=UTC)  # 09:00 JST
    out = cal.add_business_minutes(utc_start, 30)
    assert out.utcoffset() == dt.timedelta(hours=9) and out == jst(2026, 10, 5, 9, 30)
    with pytest.raises(ValueError):
        cal.add_business_minutes(dt.datetime(2026, 10, 5, 9), 10)
    with pytest.raises(ValueError):
        cal.business_minutes_between(dt.datetime(2026, 10, 5, 9), jst(2026, 10, 5, 10))
    with pytest.raises(ValueError):
        cal.add_business_minutes(jst(2026, 10, 5, 9), -5)


def test_long_span_across_years(cal):
    start = jst(2025, 3, 3, 9)
    end = cal.add_business_minutes(start, 540 * 600)  # ~600 working days
    assert end.year == 2027
    assert cal.business_minutes_between(start, end) == 540 * 600


def test_property_add_then_between_gives_n_back():
    rng = random.Random(20261103)
    calendars = [standard_calendar(), standard_calendar(saturday=True),
                 BusinessCalendar({d: [(dt.time(8, 30), dt.time(12)), (dt.time(13), dt.time(17, 15))]
                                   for d in range(6)}, closed_dates={dt.date(2026, 8, 14)})]
    base = jst(2025, 12, 1)
    for _ in range(1500):
        cal = rng.choice(calendars)
        t = base + dt.timedelta(seconds=rng.randrange(0, 400 * 86400))
        n = rng.choice([0, 1, rng.randrange(1, 600), rng.randrange(600, 60000)])
        due = cal.add_business_minutes(t, n)
        assert due >= t
        assert cal.business_minutes_between(t, due) == n
        assert cal.business_minutes_between(due, t) == -n
        if n:
            # The result is the earliest such instant: one second earlier is short of n.
            assert cal.business_seconds_between(t, due - dt.timedelta(seconds=1)) < n * 60
            # …and it lies in or at the end of an open interval.
            assert cal.is_open(due - dt.timedelta(seconds=1))


def test_between_is_additive():
    rng = random.Random(7)
    cal = standard_calendar()
    base = jst(2026, 1, 1)
    for _ in range(500):
        a, b, c = sorted(base + dt.timedelta(minutes=rng.randrange(0, 500 * 1440)) for _ in range(3))
        assert cal.business_seconds_between(a, c) == \
            cal.business_seconds_between(a, b) + cal.business_seconds_between(b, c)


def test_bad_hours_refused():
    with pytest.raises(ValueError):
        BusinessCalendar({0: [(dt.time(18), dt.time(9))]})
    with pytest.raises(ValueError):
        BusinessCalendar({0: [(dt.time(9), dt.time(13)), (dt.time(12), dt.time(18))]})
