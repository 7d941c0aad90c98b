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
    assert "（分）" not in html.split('aria-labelledby="edit-h"', 1)[0]  # the table; the form labels its minute inputs 「（分）」


def _post(client, **fields):
    data = {"priority": "P2", "role": "", "category": "", "at_risk_percent": "75", **fields}
    return client.post("/sla/policies", data=data)


def _errors(html):
    import re

    return dict(re.findall(r'<p class="field-error" id="([\w-]+)-error">(.*?)</p>', html))


def test_policy_form_takes_hours_and_minutes_and_stores_minutes(db, client, login, make_user):
    """Issue 16.10: two labelled inputs per target; stored as minutes as before; edit shows them split."""
    from sqlalchemy import select

    from helpdesk.sla.models import SlaPolicy

    login(make_user(roles="admin"))
    page = client.get("/sla/policies").get_data(as_text=True)
    for name, label in (("first_response_hours", "初回応答の目標（時間）"), ("first_response_mins", "初回応答の目標（分）"),
                        ("resolution_hours", "解決の目標（時間）"), ("resolution_mins", "解決の目標（分）"),
                        ("next_update_hours", "次回更新の目標（時間）"), ("next_update_mins", "次回更新の目標（分）")):
        assert f'<label for="{name}">{label}</label>' in page and f'name="{name}"' in page
    assert "_minutes" not in page
    # Full-width digits as typed with a Japanese IME are accepted.
    response = _post(client, first_response_hours="１", first_response_mins="30", resolution_hours="8",
                     resolution_mins="", next_update_hours="", next_update_mins="45")
    assert response.status_code == 302
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.priority == "P2"))
    assert (policy.first_response_minutes, policy.resolution_minutes, policy.next_update_minutes) == (90, 480, 45)
    edit = client.get(f"/sla/policies/{policy.id}").get_data(as_text=True)
    import re

    values = dict(re.findall(r'<input id="(\w+_(?:hours|mins))"[^>]* value="(\d*)"', edit))
    assert values == {"first_response_hours": "1", "first_response_mins": "30", "resolution_hours": "8",
                      "resolution_mins": "0", "next_update_hours": "0", "next_update_mins": "45"}


def test_policy_form_one_plain_message_per_field(db, client, login, make_user):
    login(make_user(roles="admin"))
    response = _post(client, first_response_hours="abc", first_response_mins="75", resolution_hours="",
                     resolution_mins="", next_update_hours="0", next_update_mins="0")
    assert response.status_code == 400
    errors = _errors(response.get_data(as_text=True))
    assert errors == {
        "first_response_hours": "時間は 0 以上の整数で入力してください（例: 8）。",
        "first_response_mins": "分は 0〜59 の整数で入力してください。",
        "resolution_hours": "解決の目標を時間と分で入力してください（例: 8 時間 0 分）。",
        "next_update_hours": "次回更新の目標は 1 分以上にしてください。",
    }
    too_long = _post(client, first_response_hours="2000", resolution_hours="1")
    assert _errors(too_long.get_data(as_text=True)) == {
        "first_response_hours": "初回応答の目標は 1666時間40分 以内にしてください。"}
    # The service's cross-check (resolution ≥ first response) lands next to the resolution input, alone.
    crossed = _post(client, first_response_hours="2", resolution_hours="1", resolution_mins="59")
    errors = _errors(crossed.get_data(as_text=True))
    assert list(errors) == ["resolution_hours"] and "解決の目標は初回応答の目標以上" in errors["resolution_hours"]
    from helpdesk.sla.models import SlaPolicy

    assert db.session.query(SlaPolicy).count() == 0


def test_policy_form_messages_in_english(db, client, login, make_user):
    from flask_babel import refresh

    login(make_user(roles="admin", locale="en"))
    refresh()  # one app context for all requests in a test: forget the cached locale
    errors = _errors(_post(client, first_response_hours="", resolution_hours="1", resolution_mins="99").get_data(as_text=True))
    assert errors == {"first_response_hours": "First response target: enter it in hours and minutes (for example 8 hours 0 minutes).",
                      "resolution_mins": "Enter the minutes as a whole number from 0 to 59."}
