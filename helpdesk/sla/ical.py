"""Holidays from an iCalendar (.ics) file: the all-day events' dates, without an iCal library.

Reads what calendar exports (Google, Outlook, the Cabinet Office's 国民の祝日 feed) write for holidays:
``BEGIN:VEVENT`` … ``DTSTART;VALUE=DATE:20260101`` (optionally ``DTEND;VALUE=DATE`` for several days,
exclusive as RFC 5545 says) and ``SUMMARY`` … ``END:VEVENT``; folded lines (RFC 5545 §3.1) are unfolded.
Anything else is ignored. A file that is not a calendar, or an event whose dates cannot be read, is
refused as a whole with the line number, so a half-imported year never happens.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

#: Longest single event accepted (a holiday period, not a recurring rule).
MAX_EVENT_DAYS = 31
MAX_EVENTS = 2000
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATETIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T\d{6}Z?$")


class IcsError(ValueError):
    """A refused file; `line` is 1-based (0 when it concerns the whole file)."""

    def __init__(self, line: int, message: str):
        super().__init__(_l("%(line)s行目: %(message)s", line=line, message=message) if line else message)
        self.line, self.message = line, message


@dataclass(frozen=True)
class Holiday:
    day: dt.date
    summary: str
    line: int


def _unfold(text: str) -> list[tuple[int, str]]:
    """(first physical line number, logical line) pairs."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + raw[1:])
        else:
            out.append((number, raw))
    return out


def _date(value: str, line: int) -> dt.date:
    match = _DATE.match(value) or _DATETIME.match(value)
    if not match:
        raise IcsError(line, _l("日付「%(value)s」を読み取れません（YYYYMMDD の形式が必要です）。", value=value[:40]))
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise IcsError(line, _l("日付「%(value)s」は存在しない日付です。", value=value[:40])) from None


def _unescape(value: str) -> str:
    return (value.replace("\\n", " ").replace("\\N", " ").replace("\\,", ",").replace("\\;", ";")
            .replace("\\\\", "\\")).strip()


def parse_holidays(data: bytes | str) -> list[Holiday]:
    """The days of every all-day event, in file order (a multi-day event gives each of its days)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise IcsError(0, _l("ファイルを UTF-8 の文字として読み取れません。iCalendar（.ics）ファイルを選んでください。")) from None
    lines = _unfold(data)
    if not any(line.strip().upper() == "BEGIN:VCALENDAR" for _, line in lines[:5]):
        raise IcsError(lines[0][0] if lines else 0,
                       _l("iCalendar（.ics）ファイルではありません（BEGIN:VCALENDAR がありません）。"))
    holidays: list[Holiday] = []
    event: dict | None = None
    for number, line in lines:
        name, _, value = line.partition(":")
        key = name.split(";")[0].strip().upper()
        if key == "BEGIN" and value.strip().upper() == "VEVENT":
            if event is not None:
                raise IcsError(number, _l("前の予定（VEVENT）が END:VEVENT で閉じられていません。"))
            event = {"line": number}
        elif event is None:
            continue
        elif key in ("DTSTART", "DTEND"):
            event[key] = (_date(value.strip(), number), number)
        elif key == "SUMMARY":
            event["SUMMARY"] = _unescape(value)
        elif key == "END" and value.strip().upper() == "VEVENT":
            if "DTSTART" not in event:
                raise IcsError(event["line"], _l("予定に開始日（DTSTART）がありません。"))
            start, start_line = event["DTSTART"]
            end = event["DTEND"][0] if "DTEND" in event else start + dt.timedelta(days=1)
            days = (end - start).days
            if days < 1 or days > MAX_EVENT_DAYS:
                raise IcsError(event.get("DTEND", (None, start_line))[1],
                               _l("終了日（DTEND）は開始日の翌日から%(days)s日以内にしてください。", days=MAX_EVENT_DAYS))
            for i in range(days):
                holidays.append(Holiday(start + dt.timedelta(days=i), event.get("SUMMARY", "")[:200], start_line))
            if len(holidays) > MAX_EVENTS:
                raise IcsError(number, _l("休業日が多すぎます（%(n)s日まで）。", n=MAX_EVENTS))
            event = None
    if event is not None:
        raise IcsError(event["line"], _l("予定（VEVENT）が END:VEVENT で閉じられていません。"))
    if not holidays:
        raise IcsError(0, _l("ファイルに予定（VEVENT）がありません。"))
    return holidays
