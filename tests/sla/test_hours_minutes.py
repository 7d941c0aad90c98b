"""Issue 16.10 (display): SLA targets shown in hours and minutes, not raw minutes."""
from helpdesk.templating import hours_minutes


def test_hours_minutes_words(app):
    with app.test_request_context():
        assert hours_minutes(480) == "8時間"
        assert hours_minutes(90) == "1時間30分"
        assert hours_minutes(45) == "45分"
        assert hours_minutes(0) == "0分"
        assert hours_minutes(5123.8) == "85時間24分"
        assert hours_minutes(None) == "—"


def test_policies_page_shows_hours_and_minutes(db, client, login, make_user):
    from helpdesk.audit import Actor
    from helpdesk.sla import service

    admin = make_user(roles="admin supervisor")
    service.save_policy(db.session, Actor.for_user(admin), priority="P2", first_response_minutes=90,
                        resolution_minutes=480, at_risk_percent=80, auto_escalate=False)
    login(admin)
    html = client.get("/sla/policies").get_data(as_text=True)
    assert "<td>1時間30分</td><td>8時間</td><td>—</td>" in html
    assert "（分）" not in html
