"""Custom fields in a browser (issue 17.2): the admin page, the phone intake (category fields shown by the
script, messages next to the inputs), the ticket page and the queue filter; axe-checked, screenshots."""
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.e2e.conftest import run_axe

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"


def _deactivate(session, keys):
    from helpdesk.tickets import custom_fields as cf

    for key in keys:
        field = cf.field_by_key(session, key)
        if field is not None:
            field.active = False


def test_admin_defines_fields_and_agent_uses_them(page, live_server, browser_login, in_live_app):
    SCREENS.mkdir(parents=True, exist_ok=True)
    keys = ("e2e_lot", "e2e_screen")
    try:
        browser_login(page, "admin@helpdesk.example.jp")
        page.goto(f"{live_server}/admin/custom-fields")
        assert page.locator("nav.admin-menu a[aria-current], nav.admin-menu .current, nav.admin-menu a").count() > 0
        # A bad key and a missing label: both messages next to their inputs, nothing saved.
        page.fill("#key", "Lot-No")
        page.click("form[action$='/admin/custom-fields'] button[type=submit]")
        assert "キーは英小文字で始まる" in page.inner_text("#key-error")
        assert "表示名（日本語）を入力してください。" in page.inner_text("#label_ja-error")
        assert page.get_attribute("#key", "aria-invalid") == "true"
        assert run_axe(page) == []
        page.screenshot(path=str(SCREENS / "17_2_custom_field_admin_errors.png"), full_page=True)
        # A lot number for delivery tickets (required there) and a screen id for every ticket.
        page.fill("#key", "e2e_lot")
        page.fill("#label_ja", "ワクチンロット番号")
        page.fill("#label_en", "Vaccine lot number")
        page.select_option("#category", "delivery")
        page.check("#required")
        page.click("form[action$='/admin/custom-fields'] button[type=submit]")
        page.wait_for_selector(".flash--success")
        page.fill("#key", "e2e_screen")
        page.fill("#label_ja", "画面ID")
        page.select_option("#type", "choice")
        page.fill("#choices", "SCR-ORDER | 発注画面 | Order screen\nSCR-STOCK | 在庫画面 | Stock screen")
        page.click("form[action$='/admin/custom-fields'] button[type=submit]")
        page.wait_for_selector(".flash--success")
        table = page.inner_text("table")
        assert "ワクチンロット番号" in table and "e2e_screen" in table
        page.screenshot(path=str(SCREENS / "17_2_custom_field_admin.png"), full_page=True)

        # The phone intake: the delivery-only field appears when the category is chosen.
        page.context.clear_cookies()
        browser_login(page, "agent1@helpdesk.example.jp")
        page.goto(f"{live_server}/agent/intake")
        assert page.is_visible("#cf-e2e_screen")
        assert not page.is_visible("#cf-e2e_lot")
        page.select_option("#category", "delivery")
        assert page.is_visible("#cf-e2e_lot")
        page.fill("#caller_search", "千代田内科")
        page.wait_for_selector("#caller-listbox [role=option]")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        page.wait_for_selector("#caller-selected:not([hidden])")
        page.fill("#subject", "ロット番号の問い合わせ（E2E）")
        page.select_option("#cf-e2e_screen", "SCR-STOCK")
        page.click("#intake-submit")
        assert "「ワクチンロット番号」を入力してください。" in page.inner_text("#cf-e2e_lot-error")
        assert page.get_attribute("#cf-e2e_lot", "aria-invalid") == "true"
        assert page.input_value("#cf-e2e_screen") == "SCR-STOCK"  # kept as chosen
        assert run_axe(page) == []
        page.screenshot(path=str(SCREENS / "17_2_intake_custom_field_error.png"), full_page=True)
        page.fill("#cf-e2e_lot", "ＥＷ０４２１")
        page.click("#intake-submit")
        page.wait_for_selector(".flash--success")
        ref = page.inner_text(".flash--success a")

        # The ticket page shows and edits the values; the change is on the timeline.
        page.goto(f"{live_server}/tickets/{ref}")
        assert page.input_value("#cf-e2e_lot") == "EW0421"
        page.fill("#cf-e2e_lot", "EW0422")
        page.click("#custom-fields button[type=submit]")
        page.wait_for_selector(".flash--success")
        assert "ワクチンロット番号: EW0421 → EW0422" in page.inner_text("#timeline")
        assert run_axe(page) == []
        page.locator("#custom-fields").screenshot(path=str(SCREENS / "17_2_ticket_custom_fields.png"))

        # The queue filters on it.
        page.goto(f"{live_server}/agent/queue?cf_e2e_lot=EW0422")
        assert ref in page.inner_text("main")
        assert page.get_attribute("details.cf-filters", "open") is not None
        assert run_axe(page) == []
        page.goto(f"{live_server}/agent/queue?cf_e2e_lot=EW9999")
        assert ref not in page.inner_text("main")
    finally:
        in_live_app(lambda session: _deactivate(session, keys))


def test_portal_form_checks_a_number_field(page, live_server, browser_login, in_live_app):
    def make(session):
        from helpdesk.accounts.models import User
        from helpdesk.audit import Actor
        from helpdesk.tickets import custom_fields as cf

        admin = session.scalar(select(User).where(User.email == "admin@helpdesk.example.jp"))
        cf.create_field(session, Actor.for_user(admin), key="e2e_doses", label_ja="接種回数", label_en="Doses",
                        type="number", commit=False)

    in_live_app(make)
    try:
        browser_login(page, "clinic@chiyoda-naika.example.jp")
        page.goto(f"{live_server}/portal/new")
        page.fill("#subject", "Doses")
        page.fill("#description", "How many?")
        page.fill("#cf-e2e_doses", "two")
        page.click("form.portal-form button[type=submit]")
        error = page.inner_text("#cf-e2e_doses-error")
        assert "「接種回数」は数字で入力してください" in error
        assert run_axe(page) == []
        page.screenshot(path=str(SCREENS / "17_2_portal_custom_field.png"), full_page=True)
    finally:
        in_live_app(lambda session: _deactivate(session, ("e2e_doses",)))
