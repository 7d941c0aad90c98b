"""Issue 16.5 / 16.10 in Chromium: no send button without a tracker (a plain note instead, no "sent" choice);
the SLA policy form takes hours + minutes with one message per input. Screenshots in bench/out/screens."""
from pathlib import Path

import pytest

from tests.e2e.conftest import run_axe

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"


def test_problem_page_without_tracker_shows_a_note(page, live_server, browser_login, in_live_app, live_app):
    assert not live_app.config.get("TRACKER_WEBHOOK_URL")

    def seed(session):
        from helpdesk.accounts.models import User
        from helpdesk.audit import Actor
        from helpdesk.insights import service

        po = session.query(User).filter_by(email="po@helpdesk.example.jp").one()
        problem = service.create_problem(session, Actor.for_user(po), title="送信先なしの確認用の問題")
        service.transition_problem(session, problem.id, "accepted", Actor.for_user(po))
        return problem.id

    pid = in_live_app(seed)
    browser_login(page, "po@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/insights/problems/{pid}")
    section = page.locator("section[aria-labelledby=status-h]")
    assert "開発トラッカーとの連携が設定されていません。管理者に連絡してください。" in section.inner_text()
    assert page.get_by_role("button", name="開発トラッカーへ送る").count() == 0
    options = page.locator("#to option").all_inner_texts()
    assert "開発へ送付済み" not in options and "候補" in options
    assert "TRACKER_WEBHOOK" not in page.content()
    SCREENS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SCREENS / "16_5_no_tracker_note.png"))


def test_sla_policy_form_in_hours_and_minutes(page, live_server, browser_login):
    browser_login(page, "admin@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/sla/policies")
    page.select_option("#priority", "P4")
    page.get_by_label("初回応答の目標（時間）").fill("1")
    page.get_by_label("初回応答の目標（分）").fill("75")
    page.get_by_label("解決の目標（時間）").fill("x")
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#first_response_mins-error").inner_text() == "分は 0〜59 の整数で入力してください。"
    assert page.locator("#resolution_hours-error").inner_text() == "時間は 0 以上の整数で入力してください（例: 8）。"
    assert page.locator(".field-error").count() == 2
    assert page.get_attribute("#first_response_mins", "aria-describedby") == "first_response_mins-error"
    assert run_axe(page) == []
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.locator("section[aria-labelledby=edit-h]").screenshot(path=str(SCREENS / "16_10_sla_form_errors.png"))
    page.get_by_label("初回応答の目標（分）").fill("30")
    page.get_by_label("解決の目標（時間）").fill("8")
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state("networkidle")
    row = page.locator("tbody tr", has_text="P4").first
    assert "1時間30分" in row.inner_text() and "8時間" in row.inner_text()
