"""Browser: log in, fail a login, switch language."""
from tests.e2e.conftest import run_axe


def test_failed_login_shows_message(page, live_server):
    page.goto(f"{live_server}/login")
    page.fill("#email", "agent1@helpdesk.example.jp")
    page.fill("#password", "wrong-password-1")
    page.click("main button[type=submit]")
    assert "ログインIDまたはパスワードが正しくない" in page.inner_text("#login-error")


def test_login_and_switch_language(page, live_server, browser_login):
    browser_login(page, "supervisor@helpdesk.example.jp")
    assert "/login" not in page.url
    page.click("button[name=lang][value=en]")
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("button[name=lang][value=ja]").count() == 1


def test_login_page_is_accessible(page, live_server):
    page.goto(f"{live_server}/login")
    violations = run_axe(page)
    assert violations == [], violations
