"""Issue 16.4 (print layout): trends, a recurring group and the monthly report printed on A4.

The page is laid out in print media at the printable width of A4 portrait (210 mm − 2 × 12 mm margins = 186 mm
≈ 703 CSS px): header, menus, forms and buttons are gone, tables are not cut (no scroll box, rows kept whole),
and every chart label is printed at least as large as the tables' text — the label's computed font size times
the scale the SVG is drawn at (a 720-unit wide chart squeezed into a column prints smaller than its
font-size says). A screenshot and a PDF (Chromium's own print) of each page are saved for reviewers.
"""
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"
PRINT_WIDTH = 703  # CSS px: 186 mm

MEASURE = """() => {
  const visible = el => { const s = getComputedStyle(el); const r = el.getBoundingClientRect();
                          return s.display !== 'none' && s.visibility !== 'hidden' && r.width > 0 && r.height > 0; };
  const cells = [...document.querySelectorAll('main table td, main table th')].filter(visible);
  const labels = [...document.querySelectorAll('main svg text')].filter(visible).map(t => {
    const m = t.ownerSVGElement.getScreenCTM();
    return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * Math.abs(m.a)};
  });
  const overflowing = [...document.querySelectorAll('main .table-wrap, main table')].filter(visible)
    .filter(el => el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().right > window.innerWidth + 1)
    .map(el => el.className || el.tagName);
  const svgs = [...document.querySelectorAll('main svg')].filter(visible).map(s => s.getBoundingClientRect().width);
  return {
    tableMax: Math.max(...cells.map(c => parseFloat(getComputedStyle(c).fontSize))),
    tableMin: Math.min(...cells.map(c => parseFloat(getComputedStyle(c).fontSize))),
    cells: cells.length, labels, svgs, overflowing,
    shown: [...document.querySelectorAll('.site-header, .admin-menu, main nav, main form, main button, .site-footer')]
      .filter(visible).map(e => e.tagName + '.' + e.className),
    rowsBreak: [...document.querySelectorAll('main tr')].slice(0, 3).map(r => getComputedStyle(r).breakInside),
  };
}"""


def _group_id(session):
    from helpdesk.insights import service, trends

    trends.refresh_rollups(session)  # the trends page draws from the rollup table
    groups = service.list_groups(session) or (service.refresh_groups(session), service.list_groups(session))[1]
    return groups[0].id


def _check_print(page, name: str) -> dict:
    page.emulate_media(media="print")
    page.set_viewport_size({"width": PRINT_WIDTH, "height": 1000})
    found = page.evaluate(MEASURE)
    assert found["shown"] == [], (name, found["shown"])  # header, menus, forms and buttons are not printed
    assert found["cells"] > 0 and found["labels"], name
    small = [label for label in found["labels"] if label["px"] + 0.05 < found["tableMax"]]
    assert small == [], (name, found["tableMax"], small[:5])
    assert found["overflowing"] == [], (name, found["overflowing"])  # no table cut at the right edge
    assert set(found["rowsBreak"]) == {"avoid"}, (name, found["rowsBreak"])  # a row is never split over two pages
    assert all(width <= PRINT_WIDTH for width in found["svgs"]), (name, found["svgs"])
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"16_4_print_{name}.png"), full_page=True)
    # the first chart with the table after it, at print size: labels next to table text for the eye
    page.locator("main svg").first.locator("xpath=ancestor::section[1]").screenshot(
        path=str(SCREENS / f"16_4_print_{name}_chart.png"))
    page.pdf(path=str(SCREENS / f"16_4_print_{name}.pdf"), format="A4", print_background=True)
    return found


def test_trends_group_and_monthly_report_print_with_readable_chart_labels(page, live_server, browser_login,
                                                                           in_live_app):
    group_id = in_live_app(_group_id)
    browser_login(page, "admin@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/insights")
    screen = page.evaluate(MEASURE)
    assert screen["shown"], "on screen the header and forms are there"
    assert "データがありません" not in page.locator("main table").first.inner_text()
    trends = _check_print(page, "trends")
    assert len(trends["svgs"]) >= 2 and min(trends["svgs"]) > PRINT_WIDTH * 0.9  # charts get the full width
    # the longest legend names (organisations) are printed whole, not cut at the chart's edge
    org_chart = page.locator("#vol-org").locator("xpath=..")
    org_chart.screenshot(path=str(SCREENS / "16_4_print_trends_org_chart.png"))
    legend_right = org_chart.locator("svg text").evaluate_all(
        "els => Math.max(...els.map(e => e.getBoundingClientRect().right))")
    assert legend_right <= PRINT_WIDTH, legend_right

    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/insights/recurring/{group_id}")
    _check_print(page, "recurring_group")

    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/reports/monthly")
    report = _check_print(page, "monthly_report")
    assert report["tableMin"] >= 10  # the report's tables stay readable on paper (8 pt ≈ 10.7 px)
