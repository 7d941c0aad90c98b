"""Browser: users imported through the CLI appear on the activation dashboard of a supervisor."""
from __future__ import annotations

from tests.e2e.conftest import run_axe

CSV = ("email,name,org_code,org_name,org_kind,prefecture,roles\n"
       "e2e-city@otaru.example.jp,小樽 一郎,012033,北海道小樽市,municipality,北海道,requester\n"
       "e2e-clinic@otaru.example.jp,運河 花子,0120330001,小樽運河クリニック,clinic,北海道,requester\n"
       "broken-line,名前なし,012033,北海道小樽市,municipality,北海道,requester\n")


def test_imported_users_show_on_the_activation_dashboard(live_app, page, live_server, browser_login, tmp_path,
                                                         monkeypatch):
    from helpdesk.accounts.cli import import_users_cli

    monkeypatch.setattr("helpdesk.cli.ensure_db", lambda: None)  # the e2e schema comes from create_all()
    path = tmp_path / "users.csv"
    path.write_bytes(CSV.encode("cp932"))
    with live_app.app_context():  # the CLI reuses the current app context: make it the live app's
        result = live_app.test_cli_runner().invoke(import_users_cli, [str(path)])
    assert result.exit_code == 1  # the broken line is reported, the others imported
    assert "created: 2" in result.output and f"{path}:4:" in result.output

    browser_login(page, "supervisor@helpdesk.example.jp")
    page.goto(f"{live_server}/accounts/activation")
    assert page.locator("h1").inner_text() == "利用開始状況"
    page.select_option("#f-prefecture", "北海道")
    page.fill("#f-q", "小樽")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_load_state("networkidle")
    table = page.locator("#outreach").inner_text()
    assert "北海道小樽市" in table and "小樽運河クリニック" in table
    assert "運河 花子" in table

    # The supervisor opens the contact's page and sees the invited state.
    page.click("#outreach >> text=運河 花子")
    page.wait_for_load_state("networkidle")
    assert "e2e-clinic@otaru.example.jp" in page.inner_text("#user-email")
    assert "招待中" in page.inner_text("#user-state")


def test_activation_dashboard_is_accessible(page, live_server, browser_login):
    browser_login(page, "supervisor@helpdesk.example.jp")
    page.goto(f"{live_server}/accounts/activation")
    violations = run_axe(page)
    assert violations == [], violations


def test_agent_unlocks_the_locked_demo_user(page, live_server, browser_login):
    browser_login(page, "agent1@helpdesk.example.jp")
    page.goto(f"{live_server}/accounts/users?q=locked")
    page.click("#users >> text=阿部 真一")
    page.wait_for_load_state("networkidle")
    assert "ロック中" in page.inner_text("#user-lock")
    page.click("button:has-text('ロックを解除する')")
    page.wait_for_load_state("networkidle")
    assert "ロックを解除しました" in page.inner_text(".flashes")
    assert page.inner_text("#user-lock") == "なし"
    violations = run_axe(page)
    assert violations == [], violations


def test_admin_pages_are_accessible_and_work_by_keyboard(page, live_server, browser_login):
    browser_login(page, "admin@helpdesk.example.jp")
    for path in ("/admin", "/accounts/users?q=%E4%BD%90%E8%97%A4", "/admin/organisations", "/admin/audit",
                 "/admin/users/new", "/admin/organisations/new"):
        page.goto(f"{live_server}{path}")
        violations = run_axe(page)
        assert violations == [], (path, violations)
    # Filter the audit log with the keyboard only.
    page.goto(f"{live_server}/admin/audit")
    page.focus("#actor")
    page.keyboard.type("admin@")
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    assert "actor=admin%40" in page.url
    assert "ログイン成功" in page.inner_text("#audit")


def test_supervisor_downloads_the_outreach_csv(page, live_server, browser_login):
    browser_login(page, "supervisor@helpdesk.example.jp")
    page.goto(f"{live_server}/accounts/activation?prefecture=%E5%A4%A7%E9%98%AA%E5%BA%9C")
    with page.expect_download() as info:
        page.click("text=この条件でCSVをダウンロード")
    content = open(info.value.path(), encoding="utf-8-sig").read()
    assert content.startswith("org_code,org_name") and "大阪府堺市" in content
