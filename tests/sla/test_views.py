"""SLA settings pages: closed days and policies (supervisors and admins only)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from helpdesk.accounts.models import AuditLog
from helpdesk.sla.models import ClosedDay, SlaPolicy


def test_closed_days_page(db, client, login, make_user):
    login(make_user(roles="supervisor"))
    assert client.get("/sla/closed-days").status_code == 200
    response = client.post("/sla/closed-days", data={"day": "2026-10-30", "reason": "システム更新"})
    assert response.status_code == 302
    row = db.session.scalar(select(ClosedDay).where(ClosedDay.day == dt.date(2026, 10, 30)))
    assert row is not None and row.reason == "システム更新"
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "sla.closed_day_added")) is not None
    page = client.get("/sla/closed-days").get_data(as_text=True)
    assert "2026-10-30" in page and "システム更新" in page
    bad = client.post("/sla/closed-days", data={"day": "30/10/2026", "reason": "x"})
    assert bad.status_code == 400
    assert 'id="day-error"' in bad.get_data(as_text=True)
    dup = client.post("/sla/closed-days", data={"day": "2026-10-30"})
    assert dup.status_code == 400 and "既に休業日" in dup.get_data(as_text=True)
    assert client.post(f"/sla/closed-days/{row.id}/delete").status_code == 302
    assert db.session.scalar(select(ClosedDay).where(ClosedDay.day == dt.date(2026, 10, 30))) is None


def test_policies_page(db, client, login, make_user):
    login(make_user(roles="admin"))
    response = client.post("/sla/policies", data={"priority": "P1", "role": "clinic", "category": "",
                                                  "first_response_mins": "15", "resolution_hours": "2",
                                                  "at_risk_percent": "80", "auto_escalate": "y"})
    assert response.status_code == 302
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.priority == "P1"))
    assert (policy.role, policy.first_response_minutes, policy.auto_escalate) == ("clinic", 15, True)
    assert client.get(f"/sla/policies/{policy.id}").status_code == 200
    bad = client.post("/sla/policies", data={"priority": "P2", "first_response_hours": "2",
                                             "resolution_hours": "1", "at_risk_percent": "75"})
    assert bad.status_code == 400 and "解決の目標は初回応答の目標以上" in bad.get_data(as_text=True)


def test_settings_pages_are_for_supervisors(client, login, make_user):
    login(make_user(roles="agent"))
    assert client.get("/sla/closed-days").status_code == 403
    assert client.post("/sla/closed-days", data={"day": "2026-10-30"}).status_code == 403
    assert client.get("/sla/policies").status_code == 403
