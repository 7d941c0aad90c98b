"""Issue 16 (administrator) in a browser: the audit log in words, its filters and CSV export."""
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"


def _role_change(session):
    from sqlalchemy import select

    from helpdesk.accounts import service
    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor

    admin = session.scalar(select(User).where(User.email == "admin@helpdesk.example.jp"))
    agent = session.scalar(select(User).where(User.email == "agent1@helpdesk.example.jp"))
    roles = agent.roles.split()
    service.update_user(session, agent.id, Actor.for_user(admin, "192.0.2.10"),
                        roles=[r for r in roles if r != "supervisor"] + ["supervisor"])


def test_audit_log_reads_in_words_filters_and_exports(page, live_server, browser_login, in_live_app):
    in_live_app(_role_change)
    browser_login(page, "admin@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/admin/audit")
    table = page.inner_text("#audit")
    assert "ログイン成功" in table and "login.succeeded" not in table
    assert "ロールを変更: オペレーター → オペレーター、スーパーバイザー" in table
    assert "None" not in table and "{" not in table
    page.select_option("#action", label="利用者情報を変更")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "action=user.updated" in page.url
    rows = page.locator("#audit tbody tr")
    assert rows.count() >= 1 and "管理 太郎" in rows.first.inner_text()
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "16_9_audit_in_words.png"), full_page=False)
    with page.expect_download() as info:
        page.click("text=この条件でCSVをダウンロード")
    content = open(info.value.path(), encoding="utf-8-sig").read()
    assert content.startswith("日時,実行者,氏名,IPアドレス,操作") and "利用者情報を変更" in content
    page.goto(f"{live_server}/admin/audit?action=audit.exported")
    assert "監査ログを出力" in page.inner_text("#audit")


def _problem(session):
    from sqlalchemy import select

    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.insights import service

    groups = service.list_groups(session) or (service.refresh_groups(session), service.list_groups(session))[1]
    po = session.scalar(select(User).where(User.email == "po@helpdesk.example.jp"))
    return service.promote_group(session, groups[0].id, Actor.for_user(po)).id


def test_insights_values_read_as_words(page, live_server, browser_login, in_live_app):
    problem_id = in_live_app(_problem)
    browser_login(page, "po@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/insights")
    page.get_by_role("button", name="再集計").click()
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server}/insights")
    hint = page.locator("p.hint").first.inner_text()
    assert "+00:00" not in hint and "東京時間" in hint
    spikes = page.locator("#spike-h").locator("xpath=..")
    assert spikes.locator("details").get_attribute("open") is None
    assert "今週は" in spikes.locator("#spikes").inner_text() or "比べられる" in spikes.locator("#spikes").inner_text()
    assert not spikes.get_by_text("1.4826", exact=False).is_visible()
    spikes.get_by_text("詳しく").click()
    assert spikes.get_by_text("1.4826", exact=False).is_visible()
    SCREENS.mkdir(parents=True, exist_ok=True)
    spikes.screenshot(path=str(SCREENS / "16_3_spikes_in_words.png"))
    page.goto(f"{live_server}/insights/problems/{problem_id}")
    assert "件（" in page.inner_text("#evidence-h + p + p")
    body = page.inner_text("main")
    assert "clinic: " not in body and "municipality: " not in body
    page.screenshot(path=str(SCREENS / "16_3_problem_in_words.png"), full_page=True)


ADMIN_PAGES = ["/admin", "/accounts/users", "/admin/users/import", "/admin/organisations", "/accounts/activation", "/admin/api-tokens",
               "/admin/webhooks", "/notify/failed", "/sla/policies", "/admin/custom-fields", "/admin/audit"]


def test_one_admin_menu_on_every_admin_page_and_header_on_one_line(page, live_server, browser_login):
    browser_login(page, "admin@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    SCREENS.mkdir(parents=True, exist_ok=True)
    for path in ADMIN_PAGES:
        page.goto(f"{live_server}{path}")
        menu = page.get_by_role("navigation", name="管理メニュー")
        hrefs = menu.locator("a").evaluate_all("els => els.map(e => new URL(e.href).pathname)")
        assert hrefs == ADMIN_PAGES, (path, hrefs)
        assert menu.locator("a[aria-current=page]").count() == 1, path
        # the header and the admin menu each fit on one line at 1366 px
        tops = page.eval_on_selector_all(".site-header__inner > *, .main-nav li",
                                         "els => els.map(e => Math.round(e.getBoundingClientRect().top))")
        assert max(tops) - min(tops) < 20, (path, tops)
        items = menu.locator("li").evaluate_all("els => els.map(e => Math.round(e.getBoundingClientRect().top))")
        assert len(set(items)) == 1, (path, items)
        if path == "/admin/audit":
            page.screenshot(path=str(SCREENS / "16_8_admin_menu.png"))
    for path in ADMIN_PAGES:  # every item opens (200), menu links included
        assert page.request.get(f"{live_server}{path}").status == 200, path


def test_one_time_token_has_a_copy_button(page, live_server, browser_login):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    browser_login(page, "admin@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/admin/api-tokens")
    page.fill("#name", "コピー確認")
    page.fill("#user_email", "agent1@helpdesk.example.jp")
    page.locator("input[name=scopes]").first.check()
    page.click("button:has-text('発行する')")
    page.wait_for_load_state("networkidle")
    token = page.input_value("#new-token")
    assert len(token) > 20
    page.get_by_role("button", name="コピー", exact=True).click()
    page.wait_for_function("document.querySelector('[data-copy-status=\"new-token\"]').textContent.length > 0")
    assert page.evaluate("navigator.clipboard.readText()") == token
    page.screenshot(path=str(SCREENS / "16_8_token_copy.png"))


def test_sla_and_monthly_report_durations_in_hours_and_minutes(page, live_server, browser_login):
    browser_login(page, "admin@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/sla/policies")
    defaults = page.get_by_text("既定の目標（").inner_text()
    assert "時間" in defaults and "分）" not in defaults
    page.goto(f"{live_server}/reports/monthly")
    page.evaluate("window.__printed = 0; window.print = () => { window.__printed += 1; }; 0")  # ; 0: a function value would be called
    page.get_by_role("button", name="印刷").click()
    assert page.evaluate("window.__printed") == 1
    summary = page.inner_text("#summary-h + .table-wrap")
    assert "営業分" not in summary
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "16_6_monthly_report.png"))
