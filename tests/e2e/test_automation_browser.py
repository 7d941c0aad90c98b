"""Automation rules in Chromium (issue 17.1): a supervisor creates a rule through the form (errors next to
the rows first), tries it on the latest tickets, a requester's new ticket makes it fire, the ticket page shows
the rule's changes. axe-checked; screenshots in bench/out/screens."""
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import run_axe

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"
WORD = "帳票印刷"  # a word no other browser test's tickets use


def test_supervisor_creates_a_rule_and_sees_it_fire(page, browser, live_server, browser_login, in_live_app):
    SCREENS.mkdir(parents=True, exist_ok=True)
    browser_login(page, "supervisor@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/agent/queue")
    page.get_by_role("navigation", name="メインメニュー").get_by_role("link", name="自動ルール").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "自動ルール"
    page.get_by_role("link", name="自動ルールを追加").click()

    page.get_by_label("ルール名").fill("帳票印刷の障害は至急")
    page.select_option("#trigger", "created")
    page.get_by_label("条件 1 の項目").select_option("text")
    page.get_by_label("条件 1 の比べ方").select_option("contains")
    page.get_by_label("条件 1 の値").fill(WORD)
    page.get_by_label("操作 1", exact=True).select_option("set_priority")
    page.get_by_label("操作 1 の値").fill("P9")  # a mistake first
    page.get_by_label("操作 2", exact=True).select_option("add_tag")
    page.get_by_label("操作 2 の値").fill("印刷障害")
    page.get_by_label("操作 3", exact=True).select_option("add_note")
    page.get_by_label("操作 3 の本文").fill("{ref}: 帳票印刷の障害。開発の既知事象を確認してください。")
    page.get_by_role("button", name="保存", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#act-0-value-error").inner_text() == "優先度は P1〜P4 で入力してください。"
    assert page.get_attribute("#act-0-value", "aria-describedby") == "act-0-value-error"
    assert page.locator(".field-error").count() == 1
    assert page.get_by_label("条件 1 の値").input_value() == WORD  # what was typed is kept
    assert run_axe(page) == []
    page.locator("form.automation-form").screenshot(path=str(SCREENS / "17_1_automation_form_error.png"))

    page.get_by_label("操作 1 の値").fill("P1")
    page.get_by_role("button", name="保存せずに試す（最新100件）").click()
    page.wait_for_load_state("networkidle")
    assert re.search(r"最新 \d+ 件のうち、当てはまるのは 0 件です。", page.locator("#preview").inner_text())
    page.get_by_role("button", name="保存", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert "自動ルール「帳票印刷の障害は至急」を保存しました。" in page.locator(".flashes").inner_text()
    row = page.locator("tr", has_text="帳票印刷の障害は至急")
    assert "チケットが作成されたとき" in row.inner_text() and "有効" in row.inner_text()
    assert run_axe(page) == []
    page.locator("main").screenshot(path=str(SCREENS / "17_1_automation_list.png"))

    # A requester writes in through the portal (another browser context).
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    requester = context.new_page()
    browser_login(requester, "clinic@chiyoda-naika.example.jp")
    requester.goto(f"{live_server}/portal/new")
    requester.fill("#subject", f"{WORD}ができません")
    requester.fill("#description", f"月次の{WORD}ボタンを押すとエラーになります。")
    requester.click("main form.portal-form button[type=submit]")
    requester.wait_for_selector(".flash--success")
    ref = re.search(r"HD-\d{6}", requester.inner_text(".flash--success")).group(0)
    context.close()

    # The rule fired in the creating transaction: the supervisor sees its changes on the ticket.
    page.goto(f"{live_server}/tickets/{ref}")
    page.wait_for_load_state("networkidle")
    text = page.locator("main").inner_text()
    assert "自動ルール「帳票印刷の障害は至急」" in text
    assert f"{ref}: 帳票印刷の障害。開発の既知事象を確認してください。" in text
    assert "印刷障害" in text
    page.locator("main").screenshot(path=str(SCREENS / "17_1_automation_fired_ticket.png"))

    def check(session):
        from sqlalchemy import select

        from helpdesk.automation.models import AutomationRule
        from helpdesk.tickets.models import Ticket, parse_ref

        ticket = session.get(Ticket, parse_ref(ref))
        assert ticket.priority == "P1" and "印刷障害" in ticket.tag_names
        rule = session.scalar(select(AutomationRule).where(AutomationRule.name == "帳票印刷の障害は至急"))
        session.delete(rule)  # leave the shared browser app as it was for later tests

    in_live_app(check)
