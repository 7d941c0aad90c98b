"""Browser: an agent types a symptom, a manual suggestion appears, one click inserts it into the reply.

Lives in tests/e2e/ to share the one Playwright browser of tests/e2e/conftest.py (owned by the manuals work).
"""
from __future__ import annotations

import pytest

from helpdesk.manuals import service
from tests.knowledge_base.conftest import ARTICLES, write_article

pytestmark = pytest.mark.e2e


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


def test_intake_suggestion_inserts_into_reply(page, live_server, browser_login, live_manuals):
    browser_login(page, "agent1@helpdesk.example.jp")
    page.goto(f"{live_server}/agent/intake")
    source = page.locator("textarea[data-suggest-target]").first
    source.click()
    source.type("お世話になっております。パスワードを忘れてログインできません", delay=5)
    item = page.locator("#kb-suggestions li.suggestion").first
    item.wait_for()
    assert "パスワードを忘れたときの再設定" in item.inner_text()
    item.locator("button.suggestion__insert").click()
    reply = page.locator("textarea[data-suggest-insert]").first
    value = reply.input_value()
    assert "パスワードを忘れたときの再設定" in value
    assert "/manuals/common/password-reset" in value


def test_ticket_page_insert_links_article(page, live_server, browser_login, live_manuals, in_live_app):
    from sqlalchemy import select

    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.tickets import service as tickets
    from helpdesk.tickets.models import TicketEvent

    def make(session):
        requester = session.scalar(select(User).where(User.email == "clinic@chiyoda-naika.example.jp"))
        t = tickets.create_ticket(session, actor=Actor(requester.id, requester.email), subject="受領できない",
                                  body="ワクチンが届いたが受領ボタンがない", channel="web", requester_id=requester.id,
                                  organisation_id=requester.organisation_id)
        return t.id, t.ref

    ticket_id, ref = in_live_app(make)
    browser_login(page, "agent1@helpdesk.example.jp")
    page.goto(f"{live_server}/tickets/{ref}")
    source = page.locator("textarea[data-suggest-target]").first
    if not source.get_attribute("data-link-url"):
        pytest.fail("the ticket page has no data-link-url for /manuals/link")
    source.click()
    source.type("ワクチンが届いたので受領の確認をしたい", delay=5)
    item = page.locator("#kb-suggestions li.suggestion[data-slug=delivery-confirmation]")
    item.wait_for()
    item.locator("button.suggestion__insert").click()
    page.locator("#kb-suggestions li.suggestion--linked").wait_for()
    assert "/manuals/clinic/delivery-confirmation" in source.input_value()

    def events(session):
        return [e.after for e in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id,
                                                                           TicketEvent.kind == "article"))]

    assert in_live_app(events) == ["delivery-confirmation"]


def test_manual_pages_are_accessible(page, live_server, browser_login, live_manuals):
    from tests.e2e.conftest import run_axe

    browser_login(page, "clinic@chiyoda-naika.example.jp")
    for path in ("/manuals", "/manuals/common/password-reset", "/manuals?q=パスワード"):
        page.goto(f"{live_server}{path}")
        assert run_axe(page) == [], path
    page.goto(f"{live_server}/manuals/common/password-reset")
    page.check("input[name=helpful][value=yes]")
    page.click("#feedback button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "ご回答ありがとうございました" in page.inner_text("main")


def test_portal_suggestion_open_is_recorded_for_deflection(page, live_server, browser_login, live_manuals,
                                                           in_live_app):
    from sqlalchemy import select

    from helpdesk.manuals.models import Deflection

    browser_login(page, "clinic@chiyoda-naika.example.jp")
    page.goto(f"{live_server}/portal/new")
    source = page.locator("textarea[data-suggest-deflection]")
    source.click()
    source.type("ワクチンが届いたので受領の登録をしたいです", delay=5)
    link = page.locator("#kb-suggestions li.suggestion a.suggestion__title").first
    link.wait_for()
    assert link.get_attribute("target") == "_blank"
    with page.context.expect_page() as new_page:
        link.click()
    article = new_page.value
    article.wait_for_load_state()
    assert "/manuals/clinic/" in article.url and "sg=" in article.url
    rows = in_live_app(lambda s: [(d.slug, d.submitted_at) for d in s.scalars(select(Deflection))])
    assert rows and rows[-1][1] is None  # opened, no ticket yet: a deflection unless one is submitted


def test_portal_submit_marks_token_submitted(page, live_server, browser_login, live_manuals, in_live_app):
    from sqlalchemy import select

    from helpdesk.manuals.models import Deflection

    browser_login(page, "clinic@chiyoda-naika.example.jp")
    page.goto(f"{live_server}/portal/new")
    source = page.locator("textarea[data-suggest-deflection]")
    source.click()
    source.type("希望量を入力したのに保存されません", delay=5)
    link = page.locator("#kb-suggestions li.suggestion a.suggestion__title").first
    link.wait_for()
    with page.context.expect_page() as new_page:
        link.click()
    new_page.value.wait_for_load_state()
    token = new_page.value.url.split("sg=")[1].split("&")[0]
    new_page.value.close()
    page.fill("input[name=subject]", "希望量が保存できない")
    page.locator("form textarea[data-suggest-deflection]").evaluate("el => el.form.requestSubmit()")
    page.wait_for_load_state("networkidle")

    def submitted(session):
        return [d.submitted_at for d in session.scalars(select(Deflection).where(Deflection.token == token))]

    for _ in range(50):  # the beacon is asynchronous
        rows = in_live_app(submitted)
        if rows and rows[0] is not None:
            break
        page.wait_for_timeout(100)
    assert rows and rows[0] is not None


def test_analytics_and_versions_pages_are_accessible(page, live_server, browser_login, live_manuals, in_live_app):
    from tests.e2e.conftest import run_axe

    def sync_twice(session):
        service.sync_manuals(session, live_manuals)
        path = live_manuals / "common" / "password-reset.ja.md"
        path.write_text(path.read_text(encoding="utf-8") + "\n## 追記\n\n新しい段落です。\n", encoding="utf-8")
        service.sync_manuals(session, live_manuals)

    in_live_app(sync_twice)
    browser_login(page, "supervisor@helpdesk.example.jp")
    page.goto(f"{live_server}/manuals/analytics")
    assert run_axe(page) == []
    page.goto(f"{live_server}/manuals/common/password-reset/versions?lang=ja")
    assert "新しい段落です。" in page.inner_text(".diff")
    assert run_axe(page) == []
