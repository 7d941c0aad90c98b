"""Browser test: a product owner opens /insights, sees a chart, promotes a group to a Problem."""
import json

import pytest

from tests.e2e.conftest import run_axe

pytestmark = pytest.mark.e2e

DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "bench" / "data" / "recurring_labelled.jsonl"


def _seed(session):
    from helpdesk.insights import service, trends
    from helpdesk.tickets.cli import import_tickets

    lines = DATA.read_text(encoding="utf-8").splitlines()
    import_tickets(session, [line for line in lines if line.strip()])
    service.refresh_groups(session)
    trends.refresh_rollups(session)
    biggest = service.list_groups(session)[0]
    return biggest.id, biggest.label


def test_product_owner_sees_chart_and_promotes_group(page, live_server, browser_login, in_live_app):
    group_id, label = in_live_app(_seed)
    browser_login(page, "po@helpdesk.example.jp")
    page.goto(f"{live_server}/insights?weeks=20")
    chart = page.locator("svg.chart").first
    chart.wait_for(state="visible")
    assert chart.bounding_box()["width"] > 200
    assert page.locator("svg.chart polyline").count() > 0
    assert page.locator("table").count() >= 7
    violations = run_axe(page)
    assert not [v for v in violations if v["impact"] in ("serious", "critical")], json.dumps(violations, ensure_ascii=False)

    page.get_by_role("link", name="繰り返し発生している問い合わせ").first.click()
    page.wait_for_load_state("networkidle")
    row = page.locator("table.recurring-groups tbody tr").filter(has_text=label).first
    row.get_by_label("問題の件名（空欄ならグループ名）").fill("E2E: 繰り返しの問い合わせ")
    row.get_by_role("button", name="問題にする").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text().endswith("E2E: 繰り返しの問い合わせ")
    assert page.locator("text=根拠資料").count() >= 1
    assert page.locator("svg.chart").count() >= 1
    page.select_option("#to", "accepted")
    page.get_by_role("button", name="状態を変更").click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".badge--status").first.inner_text() == "受理済み"
