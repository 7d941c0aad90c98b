"""Browser: the agent's workspace in English — queue (with the SLA words queue.js recounts and the bulk bar),
a ticket page and the automatic-assignment page, after the language switch in the header.

Screenshots go to $HELPDESK_SHOTS (default: the test's tmp dir) for a person to look at.
"""
import os
import re
from pathlib import Path

SHOTS = os.environ.get("HELPDESK_SHOTS")
#: Kana / kanji in the page's own words (data such as subjects and names may stay Japanese).
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _shot(page, tmp_path, name):
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def _texts(page, selector):
    return [t.strip() for t in page.locator(selector).all_inner_texts() if t.strip()]


def test_queue_and_ticket_page_in_english(browser, live_server, browser_login, tmp_path):
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    browser_login(page, "supervisor@helpdesk.example.jp")
    page.goto(f"{live_server}/agent/queue")
    # Earlier browser tests on the shared live app may have left this account in English already.
    if page.locator("button[name=lang][value=en]").count():
        page.click("button[name=lang][value=en]")
    page.goto(f"{live_server}/agent/queue")
    assert page.locator("html").get_attribute("lang") == "en"
    # The page's own words: headings, column heads, buttons, labels and the SLA words recounted by queue.js.
    page.wait_for_function("() => [...document.querySelectorAll('td.sla .sla-text')].length > 0")
    page.wait_for_timeout(300)
    own = (_texts(page, "main h1, main h2, thead th, main button, main label, main summary, main legend")
           + _texts(page, "td.sla .sla-text"))
    assert own and not [t for t in own if JAPANESE.search(t)], [t for t in own if JAPANESE.search(t)]
    sla = _texts(page, "td.sla .sla-text")
    assert any(re.fullmatch(r"(Overdue by .+|Overdue|.+ left( \(due soon\))?|Resolved|Closed|—)", t) for t in sla), sla
    page.locator("#queue-rows tr[data-ticket-id] input[type=checkbox]").first.check()
    assert page.locator("#bulk-count").inner_text() == "1 selected"
    _shot(page, tmp_path, "queue-en")
    page.locator("#queue-rows tr[data-ticket-id] a").first.click()
    page.wait_for_load_state("networkidle")
    own = _texts(page, "main h2, main dt, main button, main label, main summary, main legend, .timeline .event-text")
    assert own and not [t for t in own if JAPANESE.search(t)], [t for t in own if JAPANESE.search(t)]
    _shot(page, tmp_path, "ticket-en")
    page.goto(f"{live_server}/agent/assignment")
    assert page.locator("h1").inner_text() == "Automatic assignment"
    own = _texts(page, "main h1, main h2, thead th, main button, main legend, main label:not(.check)")
    assert not [t for t in own if JAPANESE.search(t)], [t for t in own if JAPANESE.search(t)]
    _shot(page, tmp_path, "assignment-en")
    context.close()
