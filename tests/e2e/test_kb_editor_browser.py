"""Browser: a manual editor opens the content-gap page, drafts an article from a recurring group,
edits it, previews it and publishes it as a new manual (ja + en). Screenshot: bench/out/kb_editor.png."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpdesk.manuals import service
from tests.e2e.conftest import run_axe
from tests.knowledge_base.conftest import ARTICLES, write_article

pytestmark = pytest.mark.e2e
OUT = Path(__file__).resolve().parents[2] / "bench" / "out"


@pytest.fixture
def live_manuals(live_app, tmp_path):
    root = tmp_path / "manuals"
    for slug, (role, ja_t, ja_b, en_t, en_b, tags) in ARTICLES.items():
        write_article(root, role, slug, "ja", ja_t, ja_b, tags)
        write_article(root, role, slug, "en", en_t, en_b, tags)
    saved = live_app.config["MANUALS_DIR"]
    live_app.config["MANUALS_DIR"] = str(root)
    service.invalidate_kb()
    yield root
    live_app.config["MANUALS_DIR"] = saved
    service.invalidate_kb()


def _group(session):
    from sqlalchemy import select

    from helpdesk.accounts.models import Organisation, User
    from helpdesk.audit import Actor
    from helpdesk.insights.models import RecurringGroup, RecurringMember
    from helpdesk.tickets import service as tickets

    agent = session.scalar(select(User).where(User.email == "agent1@helpdesk.example.jp"))
    org = session.scalar(select(Organisation).where(Organisation.kind == "wholesaler"))
    actor = Actor(agent.id, agent.email)
    group = RecurringGroup(label="出荷ラベル 印刷できない", top_terms=["出荷ラベル", "印刷"], size=3, active=True)
    session.add(group)
    session.flush()
    for i in range(3):
        t = tickets.create_ticket(session, actor=actor, subject=f"出荷ラベルが印刷できない{i}",
                                  body="出荷ラベルの印刷ボタンを押しても何も出ません。", channel="phone",
                                  organisation_id=org.id)
        tickets.add_comment(session, t.id, "印刷設定で用紙サイズをA4にしてから、もう一度印刷ボタンを押してください。", actor)
        tickets.change_status(session, t.id, "resolved", actor)
        session.add(RecurringMember(group_id=group.id, ticket_id=t.id))
    return group.id


def test_editor_drafts_previews_and_publishes(page, live_server, browser_login, live_manuals, in_live_app):
    in_live_app(_group)
    browser_login(page, "supervisor@helpdesk.example.jp")
    page.goto(f"{live_server}/manuals/gaps")
    row = page.locator("table.gap-groups tr", has_text="出荷ラベル 印刷できない")
    row.get_by_role("button", name="記事の下書きを作成").click()
    page.wait_for_url("**/manuals/drafts/*")
    body = page.get_by_label("本文（日本語・Markdown）")
    assert "用紙サイズをA4にしてから" in body.input_value()
    page.get_by_label("スラッグ（URLの名前）").fill("shipping-label-print")
    page.get_by_label("タイトル（英語）").fill("Shipping labels do not print")
    page.get_by_label("本文（英語・Markdown）").fill("# Shipping labels do not print\n\n1. Set the paper size to **A4**.\n")
    page.get_by_role("button", name="プレビュー").click()
    preview = page.locator("section.draft-preview")
    preview.wait_for()
    assert "A4" in preview.inner_text() and preview.locator("strong", has_text="A4").count() == 1
    assert run_axe(page) == []
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / "kb_editor.png"), full_page=True)
    page.get_by_role("button", name="公開する").click()
    page.wait_for_url("**/manuals/wholesaler/shipping-label-print")
    assert "用紙サイズをA4" in page.locator("main").inner_text()
    assert (live_manuals / "wholesaler" / "shipping-label-print.en.md").exists()
