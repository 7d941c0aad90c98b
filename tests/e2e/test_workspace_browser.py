"""Browser: the agent's workspace at 1366×768 in Japanese — queue, live refresh, shortcuts, intake, ticket page.

Screenshots go to $HELPDESK_SHOTS (default: the test's tmp dir) for a person to look at.
"""
import os
from pathlib import Path

from helpdesk.audit import Actor

SHOTS = os.environ.get("HELPDESK_SHOTS")


def _shot(page, tmp_path, name):
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def _agent_page(browser, live_server, browser_login):
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    browser_login(page, "agent2@helpdesk.example.jp")
    return context, page


def test_queue_list_first_bulk_bar_shortcuts_and_live_rows(browser, live_server, browser_login, in_live_app, tmp_path):
    context, page = _agent_page(browser, live_server, browser_login)
    page.goto(f"{live_server}/agent/queue")
    # 1. List first: filters folded, first rows inside the 768 px viewport, no bulk bar yet.
    assert page.locator("#filter-panel").is_hidden()
    rows = page.locator("#queue-rows tr[data-ticket-id]")
    assert rows.count() > 5
    assert rows.nth(4).bounding_box()["y"] + rows.nth(4).bounding_box()["height"] < 768
    assert page.locator("#bulk-bar").is_hidden()
    sla = page.locator("td.sla .sla-text").all_inner_texts()
    assert any(t.startswith(("残り", "超過")) for t in sla)  # words, not colour alone
    _shot(page, tmp_path, "queue-1366")
    # The filter panel opens on demand and stays open on the next visit.
    page.click("#filters-toggle")
    assert page.locator("#filter-panel").is_visible()
    page.goto(f"{live_server}/agent/queue")
    assert page.locator("#filter-panel").is_visible()
    page.click("#filters-toggle")
    # 3. Shortcuts: j moves, x selects (bulk bar appears with readable pickers), ? lists them.
    page.locator("body").focus()
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert "is-current" in (rows.nth(1).get_attribute("class") or "")
    page.keyboard.press("x")
    assert page.locator("#bulk-bar").is_visible()
    assert page.locator("#bulk-count").inner_text() == "1 件選択中"
    page.select_option("#action", "status")
    assert page.locator("#bulk-status").is_visible() and page.locator("#bulk-assign").is_hidden()
    assert "回答待ち" in page.locator("#bulk-status").inner_text()
    _shot(page, tmp_path, "queue-bulk-bar")
    page.keyboard.press("Shift+?")
    assert page.locator("#shortcuts").is_visible()
    _shot(page, tmp_path, "queue-shortcuts")
    page.keyboard.press("Escape")
    # Typing in the search box — and an IME composition — never fires a shortcut.
    page.click("#bulk-clear")
    page.focus("#f-q")
    page.keyboard.type("jjx")
    assert page.locator("#bulk-bar").is_hidden() and page.input_value("#f-q") == "jjx"
    page.locator("body").focus()
    page.evaluate("""() => document.dispatchEvent(new KeyboardEvent('keydown',
        {key: 'x', isComposing: true, bubbles: true}))""")
    assert page.locator("#bulk-bar").is_hidden()
    # 2. Live: a requester's new ticket appears without a reload, marked unread, counted in the title.
    before_title = page.title()

    def new_ticket(session):
        from sqlalchemy import select

        from helpdesk.accounts.models import User
        from helpdesk.tickets import service

        requester = session.scalar(select(User).where(User.email == "clinic@chiyoda-naika.example.jp"))
        return service.create_ticket(session, actor=Actor(requester.id, requester.email), subject="ライブ更新の確認",
                                     body="新しいお問い合わせ", requester_id=requester.id).ref

    ref = in_live_app(new_ticket)
    page.wait_for_selector(f'#queue-rows tr[data-ref="{ref}"].unread', timeout=20_000)
    unread = page.locator("#queue-rows tr.unread").count()
    assert page.title().startswith(f"({unread}) ") and before_title.endswith(page.title().split(") ", 1)[1])
    _shot(page, tmp_path, "queue-live-row")
    # Opening it removes the unread mark.
    page.click(f'#queue-rows tr[data-ref="{ref}"] td.ref a')
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server}/agent/queue")
    assert "unread" not in (page.locator(f'#queue-rows tr[data-ref="{ref}"]').get_attribute("class") or "")
    context.close()


def test_intake_enter_and_kana_search(browser, live_server, browser_login, tmp_path):
    context, page = _agent_page(browser, live_server, browser_login)
    page.goto(f"{live_server}/agent/intake")
    # 4. たなか / ﾀﾅｶ find 田中 by the reading.
    for query in ("たなか", "ﾀﾅｶ", "タナカ"):
        page.fill("#caller_search", query)
        page.wait_for_selector("#caller-listbox li[role=option]")
        assert "田中 直子" in page.locator("#caller-listbox").inner_text()
    _shot(page, tmp_path, "intake-kana")
    page.keyboard.press("Enter")
    assert "田中 直子" in page.locator("#caller-selected-text").inner_text()
    # Enter in 件名 does not submit; Ctrl+Enter does.
    page.fill("#subject", "電話テスト 納品予定日")
    page.press("#subject", "Enter")
    page.wait_for_timeout(500)
    assert page.url.endswith("/agent/intake") and page.input_value("#subject") == "電話テスト 納品予定日"
    page.press("#subject", "Control+Enter")
    page.wait_for_load_state("networkidle")
    assert "登録しました" in page.inner_text(".flashes")
    context.close()


def test_ticket_page_readable_macro_and_merge(browser, live_server, browser_login, in_live_app, tmp_path):
    def setup(session):
        from sqlalchemy import select

        from helpdesk.accounts.models import User
        from helpdesk.tickets import macros, service

        requester = session.scalar(select(User).where(User.email == "clinic@chiyoda-naika.example.jp"))
        agent = session.scalar(select(User).where(User.email == "agent1@helpdesk.example.jp"))
        actor = Actor(agent.id, agent.email)
        t = service.create_ticket(session, actor=Actor(requester.id, requester.email), subject="画面の確認",
                                  body="手順 https://vds.example.jp/help を見ました", requester_id=requester.id)
        service.update_fields(session, t.id, actor, assignee_id=agent.id)
        other = session.scalar(select(User).where(User.email != requester.email, User.organisation_id.isnot(None)))
        o = service.create_ticket(session, actor=Actor(other.id, other.email), subject="別組織の件",
                                  requester_id=other.id)
        macros.save_macro(session, actor, title="ブラウザ確認用", body="{requester_name} 様 確認しました。",
                          set_status="pending", set_category="delivery")
        return t.ref, o.ref, agent.name

    ref, other_ref, agent_name = in_live_app(setup)
    context, page = _agent_page(browser, live_server, browser_login)
    page.goto(f"{live_server}/tickets/{ref}")
    timeline = page.locator(".timeline").inner_text()
    assert f"担当者: 未割当 → {agent_name}" in timeline and "ステータス: 新規 → 対応中" in timeline
    assert page.locator('.ticket-body a[href="https://vds.example.jp/help"]').count() == 1
    assert page.locator("#context").is_visible()
    # 6. A macro fills the reply box and shows its changes; unticking keeps the status as is.
    page.select_option("#macro", label="ブラウザ確認用")
    page.wait_for_selector("#macro-effects:not([hidden])")
    assert "田中 直子 様 確認しました。" in page.input_value("#body")
    assert "ステータス: 対応中 → 回答待ち" in page.inner_text("#macro-effects")
    assert page.input_value("#status_after") == "pending"
    page.uncheck("#macro-keep-status")
    assert page.input_value("#status_after") == ""
    _shot(page, tmp_path, "ticket-macro")
    # 3. Shortcut n switches to an internal note (not while typing in the box).
    page.keyboard.press("n")  # typed into the reply box: no shortcut
    assert page.locator('#reply input[name="visibility"][value="public"]').is_checked()
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("n")
    assert page.locator('#reply input[name="visibility"][value="internal"]').is_checked()
    # 7. Merge preview: the target's subject, requester and status, and a warning.
    page.fill("#target", other_ref)
    page.wait_for_selector("#merge-preview:not([hidden])")
    text = page.inner_text("#merge-preview")
    assert "別組織の件" in text and "ステータス" in text and "依頼者が異なります" in text
    assert page.locator("#merge-confirm-row").is_visible()
    page.locator("#merge-preview").scroll_into_view_if_needed()
    _shot(page, tmp_path, "ticket-merge-preview")
    context.close()
