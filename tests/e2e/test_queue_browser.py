"""Browser: an agent filters the queue, opens a ticket, adds an internal note; pages pass axe."""
from tests.e2e.conftest import run_axe


def test_agent_filters_queue_and_opens_ticket(page, live_server, browser_login):
    browser_login(page, "agent1@helpdesk.example.jp")
    page.goto(f"{live_server}/agent/queue")
    assert page.locator("h1").inner_text() == "チケットキュー"
    rows_before = page.locator("table.queue-table tbody tr").count()
    assert rows_before > 5
    # Keyboard: fill the search box and submit with Enter (the filter panel opens on demand).
    if page.locator("#filter-panel").is_hidden():
        page.click("#filters-toggle")
    page.select_option("#f-status", "")
    page.fill("#f-q", "ログインできない")
    page.press("#f-q", "Enter")
    page.wait_for_load_state("networkidle")
    assert "q=" in page.url
    first = page.locator("table.queue-table tbody tr").first
    assert "ログイン" in first.inner_text()
    # A labelled select filters by category.
    page.goto(f"{live_server}/agent/queue")
    page.get_by_role("search").get_by_label("カテゴリ").select_option("delivery")
    page.get_by_role("button", name="絞り込む").click()
    page.wait_for_load_state("networkidle")
    assert "category=delivery" in page.url
    subjects = page.locator("table.queue-table td.subject").all_inner_texts()
    assert subjects and len(subjects) < rows_before
    # Open the first ticket.
    link = page.locator("table.queue-table td.subject a").first
    ref = page.locator("table.queue-table tbody tr").first.locator("td").nth(1).inner_text().strip()
    link.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/tickets/{ref}")
    assert ref in page.locator("h1").inner_text()
    # Write an internal note; it shows as a note on the timeline.
    page.get_by_label("内部メモ（担当者のみ）").check()
    page.fill("#body", "ブラウザテストの内部メモ")
    page.get_by_role("button", name="送信").click()
    page.wait_for_load_state("networkidle")
    assert "内部メモを保存しました" in page.inner_text(".flashes")
    assert "ブラウザテストの内部メモ" in page.locator(".timeline li.note").last.inner_text()


def test_queue_and_ticket_pages_are_accessible(page, live_server, browser_login):
    browser_login(page, "agent2@helpdesk.example.jp")
    page.goto(f"{live_server}/agent/queue")
    assert run_axe(page) == []
    page.locator("table.queue-table td.subject a").first.click()
    page.wait_for_load_state("networkidle")
    assert run_axe(page) == []
