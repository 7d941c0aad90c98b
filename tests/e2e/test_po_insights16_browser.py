"""Issue 16 in a browser: signed-out header links and favicon; readable recurring groups with their tickets."""
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"
DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "recurring_labelled.jsonl"


def test_signed_out_header_links_and_favicon_resolve(page, live_server):
    page.goto(f"{live_server}/login")
    for href in page.eval_on_selector_all("header a[href]", "els => els.map(e => e.href)"):
        assert page.request.get(href).status < 400, href
    icon = page.eval_on_selector("link[rel=icon]", "e => e.href")
    assert page.request.get(icon).status == 200 and page.request.get(f"{live_server}/favicon.ico").status == 200
    page.locator("header").get_by_role("link", name="マニュアル", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/manuals") and page.locator("h1").count() == 1
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "16_11_signed_out_manuals.png"))


def _seed(session):
    from helpdesk.insights import service
    from helpdesk.insights.models import RecurringGroup
    from helpdesk.tickets.cli import import_tickets

    if session.query(RecurringGroup).count() == 0:
        lines = DATA.read_text(encoding="utf-8").splitlines()
        import_tickets(session, [line for line in lines if line.strip()])
        service.refresh_groups(session)
    return [(g.id, g.label) for g in service.list_groups(session)]


def test_recurring_groups_read_as_phrases_and_list_their_tickets(page, live_server, browser_login, in_live_app):
    groups = in_live_app(_seed)
    labels = [label for _, label in groups]
    assert "初期パスワードでログインできない" in labels
    assert not any("・" in label for label in labels)
    browser_login(page, "po@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/insights/recurring")
    assert page.locator("table.recurring-groups svg.sparkline").count() >= len(groups) - 1
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "16_1_recurring_groups.png"), full_page=False)
    page.get_by_role("link", name="初期パスワードでログインできない").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "初期パスワードでログインできない"
    rows = page.locator("table.group-tickets tbody tr")
    assert rows.count() >= 10
    assert "未紐付け" in rows.first.inner_text()
    assert page.locator("svg.chart rect").count() >= 8
    page.screenshot(path=str(SCREENS / "16_1_group_page.png"), full_page=True)
