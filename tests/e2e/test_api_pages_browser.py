"""Browser: the API reference and the admin pages for API tokens and webhooks (keyboard use, axe)."""
import pytest

from tests.e2e.conftest import run_axe

pytestmark = pytest.mark.e2e


def test_api_docs_page_is_accessible(page, live_server):
    page.goto(f"{live_server}/api/v1/docs")
    assert page.locator("h1").inner_text().startswith("API")
    assert page.locator("code", has_text="POST /api/v1/help-requests").count() == 1
    violations = run_axe(page)
    assert violations == [], violations


def test_admin_issues_a_token_shown_once(page, live_server, browser_login):
    browser_login(page, "admin@helpdesk.example.jp")
    page.goto(f"{live_server}/admin/api-tokens")
    page.fill("#name", "ブラウザ発行テスト")
    page.fill("#user_email", "agent1@helpdesk.example.jp")
    page.check("input[name=scopes][value=read]")
    page.keyboard.press("Tab")
    page.click("form[action$='/admin/api-tokens'] button[type=submit]")
    page.wait_for_load_state("networkidle")
    token = page.input_value("#new-token")
    assert token.startswith("hd_") and len(token) > 30
    violations = run_axe(page)
    assert violations == [], violations
    page.goto(f"{live_server}/admin/api-tokens")
    assert page.locator("#new-token").count() == 0 and token not in page.content()


def test_admin_webhook_form_errors_next_to_fields(page, live_server, browser_login):
    browser_login(page, "admin@helpdesk.example.jp")
    page.goto(f"{live_server}/admin/webhooks")
    page.fill("#name", "内部URL")
    page.fill("#url", "http://127.0.0.1:9/hook")
    page.check("input[name=events][value='ticket.created']")
    page.click("form[action$='/admin/webhooks'] button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "内部向け" in page.locator("#url-error").inner_text()
    assert page.locator("#url").get_attribute("aria-invalid") == "true"
    violations = run_axe(page)
    assert violations == [], violations
