"""Issue 16.3: readable values — names not codes, words not dict reprs, JST without microseconds, spikes in words."""
import re

import pytest

from helpdesk.insights import service, trends


@pytest.fixture
def data(db, import_lines, labelled_rows):
    import_lines(labelled_rows)
    service.refresh_groups(db.session)
    trends.refresh_rollups(db.session)


def test_roles_in_words():
    assert service.roles_in_words({"clinic": 1, "municipality": 4}) == "自治体 4 件、医療機関 1 件"
    assert service.roles_in_words({}) == "—" and service.roles_in_words(None) == "—"


def test_dashboard_values_read_as_words(client, login, po, data, db, make_org, make_ticket):
    org = make_org(code="131999", name="読みやすさ市", kind="municipality")
    requester = None
    for _ in range(15):  # more than any organisation of the labelled set, so it is listed
        requester = make_ticket(org=org, requester=requester, channel="phone").requester
    trends.refresh_rollups(db.session)
    login(po)
    html = client.get("/insights?period=week&weeks=20").get_data(as_text=True)
    refreshed = re.search(r"集計表の更新: ([^（<]+)（東京時間）", html)
    assert refreshed and re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", refreshed.group(1))
    assert "+00:00" not in html
    org_table = html.split('id="vol-org"')[1].split("</section>")[0]
    assert '読みやすさ市 <small class="muted">131999</small>' in org_table
    channel_table = html.split('id="vol-channel"')[1].split("</section>")[0]
    assert "電話" in channel_table and ">phone<" not in channel_table
    spikes_part = html.split('id="spike-h"')[1].split("</section>")[0]
    before_details = spikes_part.split("<details")[0]
    assert "zスコア" not in before_details and "MAD" not in before_details
    assert re.search(r"今週は \d+ 件|比べられる過去の週", before_details)
    assert "<summary>詳しく</summary>" in spikes_part and "1.4826" in spikes_part.split("<details")[1]


def test_problem_description_and_evidence_in_words(client, login, po, data, db):
    login(po)
    group = service.list_groups(db.session)[0]
    response = client.post(f"/insights/recurring/{group.id}/promote", data={"title": "読みやすい課題"})
    pid = int(response.headers["Location"].rstrip("/").split("/")[-1])
    problem = service.get_problem(db.session, pid)
    assert re.search(r"件の問い合わせ（(自治体|医療機関|卸業者) \d+ 件", problem.description)
    assert not re.search(r"(municipality|clinic|wholesaler): \d", problem.description)
    html = client.get(f"/insights/problems/{pid}").get_data(as_text=True)
    assert not re.search(r"(municipality|clinic|wholesaler): \d", html)
    assert re.search(r"関連チケット \d+ 件（(自治体|医療機関|卸業者) \d+ 件", html)
    md = client.get(f"/insights/problems/{pid}/evidence.md").get_data(as_text=True)
    assert "- 状態: 候補" in md and re.search(r"- 初回: \d{4}-\d{2}-\d{2} \d{2}:\d{2} / ", md)
    assert not re.search(r"### 例\d（(municipality|clinic|wholesaler)", md)
