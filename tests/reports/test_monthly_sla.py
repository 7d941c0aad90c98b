"""Monthly report SLA attainment against a hand-computed month (issue 13, point 16).

Desk hours Mon–Fri 9:00–18:00 JST, Japanese holidays; default P3 targets: first response 240
business minutes, resolution 1,620 (three desk days). The report is generated on Mon 2 Nov 2026
12:00 JST, after the month ended, the SLA sweep having run at that time.

| ticket | role | created | first response (due) | resolved (due) | FR | resolution |
|---|---|---|---|---|---|---|
| A | clinic | Mon 10-05 09:00 | 09:30 (13:00) | 10-05 15:00 (10-07 18:00) | met | met |
| B | clinic | Mon 10-05 09:00 | 10-06 09:00 (10-05 13:00) | 10-06 10:00 (10-07 18:00) | missed | met |
| F | clinic | Thu 10-08 09:00 | 09:10 (13:00) | 10-08 11:00 (10-13 18:00*) | met | met |
| C | municipality | Wed 10-14 10:00 | 10:10 (14:00) | 10-22 10:00 (10-19 10:00) | met | missed |
| D | municipality | Tue 10-20 09:00 | 09:05 (13:00) | 10-20 12:00 (10-22 18:00) | met | met |
| G | municipality | Wed 10-21 09:00 | 09:10 (13:00) | open (10-23 18:00) | met | missed (overdue) |
| E | wholesaler | Fri 10-30 10:00 | none (14:00) | open (11-05 10:00**) | missed (overdue) | not yet due |

\\* Mon 12 Oct is a holiday (Sports Day). \\** Tue 3 Nov is a holiday (Culture Day).

Resolution: clinic 3/3 = 100.0 %, municipality 1/3 = 33.3 %, wholesaler — (0 counted: E is
not due until 5 Nov), all 4/6 = 66.7 %. First response: clinic 2/3 = 66.7 %, municipality
3/3 = 100.0 %, wholesaler 0/1 = 0.0 %, all 5/7 = 71.4 %. Before the fix, E (badge "breached" for
its first response) was counted as a resolution miss: wholesaler 0.0 % (0/1), all 57.1 % (4/7).
"""
from __future__ import annotations

import datetime as dt

from helpdesk.reports import service
from helpdesk.sla import service as sla
from helpdesk.sla.calendar import TOKYO


def jst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


AS_OF = jst(2026, 11, 2, 12)


def _make(make_ticket, org, created, first=None, resolved=None):
    t = make_ticket(org=org, created_at=created)
    t.first_response_at = first
    if resolved is not None:
        t.status, t.resolved_at = "resolved", resolved
    return t


def test_hand_computed_month(db, make_ticket, make_org):
    clinic, city, wholesaler = make_org(kind="clinic"), make_org(kind="municipality"), make_org(kind="wholesaler")
    _make(make_ticket, clinic, jst(2026, 10, 5, 9), jst(2026, 10, 5, 9, 30), jst(2026, 10, 5, 15))  # A
    _make(make_ticket, clinic, jst(2026, 10, 5, 9), jst(2026, 10, 6, 9), jst(2026, 10, 6, 10))  # B
    f = _make(make_ticket, clinic, jst(2026, 10, 8, 9), jst(2026, 10, 8, 9, 10), jst(2026, 10, 8, 11))  # F
    c = _make(make_ticket, city, jst(2026, 10, 14, 10), jst(2026, 10, 14, 10, 10), jst(2026, 10, 22, 10))  # C
    _make(make_ticket, city, jst(2026, 10, 20, 9), jst(2026, 10, 20, 9, 5), jst(2026, 10, 20, 12))  # D
    g = _make(make_ticket, city, jst(2026, 10, 21, 9), jst(2026, 10, 21, 9, 10))  # G
    e = _make(make_ticket, wholesaler, jst(2026, 10, 30, 10))  # E
    db.session.commit()
    # The due dates the table above was computed with.
    assert f.resolution_due_at == jst(2026, 10, 13, 18)
    assert c.resolution_due_at == jst(2026, 10, 19, 10)
    assert g.resolution_due_at == jst(2026, 10, 23, 18)
    assert e.first_response_due_at == jst(2026, 10, 30, 14) and e.resolution_due_at == jst(2026, 11, 5, 10)
    sla.sweep(db.session, now=AS_OF, notify=False)
    db.session.refresh(e)
    assert e.sla_state == "breached"  # for its first response only

    report = service.monthly_report(db.session, "2026-10", now=AS_OF)
    r = report.roles
    assert (r["clinic"].resolution_met, r["clinic"].resolution_counted, r["clinic"].resolution_pct) == (3, 3, 100.0)
    assert (r["municipality"].resolution_met, r["municipality"].resolution_counted,
            r["municipality"].resolution_pct) == (1, 3, 33.3)
    assert (r["wholesaler"].resolution_met, r["wholesaler"].resolution_counted,
            r["wholesaler"].resolution_pct) == (0, 0, None)
    assert (report.total.resolution_met, report.total.resolution_counted, report.total.resolution_pct) == (4, 6, 66.7)
    assert (r["clinic"].first_response_met, r["clinic"].first_response_counted) == (2, 3)
    assert r["clinic"].first_response_pct == 66.7
    assert (r["municipality"].first_response_met, r["municipality"].first_response_counted) == (3, 3)
    assert (r["wholesaler"].first_response_met, r["wholesaler"].first_response_counted) == (0, 1)
    assert r["wholesaler"].first_response_pct == 0.0
    assert (report.total.first_response_met, report.total.first_response_counted) == (5, 7)
    assert report.total.first_response_pct == 71.4
    rows = {row["role"]: row for row in service.report_rows(report)}
    assert rows["wholesaler"]["resolution_within_sla_pct"] is None  # shown as "—", exported empty

    # Once E's resolution is due and it is still open, it is a resolution miss.
    later = service.monthly_report(db.session, "2026-10", now=jst(2026, 11, 5, 10, 1))
    assert (later.roles["wholesaler"].resolution_met, later.roles["wholesaler"].resolution_counted) == (0, 1)
    assert later.total.resolution_pct == 57.1


def test_pending_ticket_clock_stops_at_pause(db, make_ticket, make_org):
    """A ticket waiting on the requester since before its due date is not overdue while it waits."""
    org = make_org(kind="wholesaler")
    t = _make(make_ticket, org, jst(2026, 10, 5, 9), jst(2026, 10, 5, 9, 10))
    t.status, t.sla_paused_at = "pending", jst(2026, 10, 6, 9)
    db.session.commit()
    assert t.resolution_due_at == jst(2026, 10, 7, 18)
    report = service.monthly_report(db.session, "2026-10", now=AS_OF)
    assert report.roles["wholesaler"].resolution_counted == 0
