"""Browser: an agent logs a phone call end to end on /agent/intake, keyboard only where it matters."""
import re

from sqlalchemy import select

from tests.e2e.conftest import run_axe


def _latest_ticket(in_live_app, subject):
    from helpdesk.tickets.models import Ticket

    def find(session):
        ticket = session.scalar(select(Ticket).where(Ticket.subject == subject).order_by(Ticket.id.desc()))
        if ticket is None:
            return None
        return {"ref": ticket.ref, "channel": ticket.channel, "handle_seconds": ticket.handle_seconds,
                "requester": ticket.requester.email if ticket.requester else None, "status": ticket.status,
                "fcr": ticket.resolved_on_first_contact, "category": ticket.category.code if ticket.category else None}

    return in_live_app(find)


def _choose_caller(page, text):
    page.fill("#caller_search", text)
    page.wait_for_selector("#caller-listbox [role=option]")
    assert page.get_attribute("#caller_search", "aria-expanded") == "true"
    page.keyboard.press("ArrowDown")
    active = page.get_attribute("#caller_search", "aria-activedescendant")
    assert active and page.get_attribute(f"#{active}", "aria-selected") == "true"
    page.keyboard.press("Enter")
    page.wait_for_selector("#caller-selected:not([hidden])")


def test_agent_logs_a_call_end_to_end(page, live_server, browser_login, in_live_app):
    browser_login(page, "agent1@helpdesk.example.jp")
    page.goto(f"{live_server}/agent/intake")
    page.click("#call-start")
    assert re.match(r"\d{1,2}:\d{2}:\d{2}", page.inner_text("#call-start-time").strip())
    _choose_caller(page, "千代田内科")
    assert "田中 直子" in page.inner_text("#caller-selected-text")
    # focus moves on to the next field (the script does it after the choice is rendered)
    page.wait_for_function("document.activeElement && document.activeElement.id === 'subject'")
    page.keyboard.type("ログインできないとの電話")
    page.fill("#description", "初期パスワードを入力してもログインできないとのこと。")
    page.select_option("#category", "login")
    page.check("#resolved_on_call")
    page.focus("#resolved_on_call")
    page.keyboard.press("Enter")  # Enter in the last field submits
    page.wait_for_selector(".flash--success")
    flash = page.inner_text(".flash--success")
    assert "登録しました" in flash and "（一次解決）" in flash
    ref = re.search(r"HD-\d{6}", flash).group(0)
    assert page.get_attribute(f".flash--success a:has-text('{ref}')", "href") == f"/tickets/{ref}"
    assert page.input_value("#subject") == ""  # ready for the next call

    saved = _latest_ticket(in_live_app, "ログインできないとの電話")
    assert saved["ref"] == ref and saved["channel"] == "phone"
    assert saved["requester"] == "clinic@chiyoda-naika.example.jp"
    assert saved["handle_seconds"] is not None and saved["handle_seconds"] >= 0
    assert saved["fcr"] is True and saved["status"] == "resolved" and saved["category"] == "login"


def test_duplicate_hint_adds_the_call_to_the_existing_ticket(page, live_server, browser_login, in_live_app):
    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.tickets import service
    from helpdesk.tickets.models import Comment

    def make(session):
        user = session.scalar(select(User).where(User.email == "logistics@east-medical.example.jp"))
        ticket = service.create_ticket(session, actor=Actor.for_user(user), subject="配送予定の登録ができない",
                                       body="配送予定の登録画面でエラーが出て保存できません", requester_id=user.id)
        return ticket.ref, ticket.id

    ref, ticket_id = in_live_app(make)
    browser_login(page, "agent2@helpdesk.example.jp")
    page.goto(f"{live_server}/agent/intake")
    _choose_caller(page, "logistics@east")
    page.fill("#subject", "配送予定の登録エラー")
    page.fill("#description", "配送予定の登録でエラーが出て保存できないと再度の電話")
    item = page.locator("#similar-list .similar-item", has_text=ref)
    item.wait_for()
    button = item.locator("button")
    assert button.get_attribute("aria-label").startswith(ref)
    button.click()
    page.wait_for_selector(".flash--success")
    assert "既存のチケットに通話を追加しました" in page.inner_text(".flash--success")

    notes = in_live_app(lambda s: [(c.is_public, c.via, c.body) for c in
                                   s.scalars(select(Comment).where(Comment.ticket_id == ticket_id))])
    assert len(notes) == 1 and notes[0][0] is False and notes[0][1] == "phone"
    assert "再度の電話" in notes[0][2]


def test_new_contact_errors_are_next_to_the_fields(page, live_server, browser_login):
    browser_login(page, "agent1@helpdesk.example.jp")
    page.goto(f"{live_server}/agent/intake")
    page.click("#new-contact summary")
    page.fill("#new_name", "新規 太郎")
    page.fill("#new_org_code", "999999")
    page.fill("#subject", "はじめての電話")
    page.click("#intake-submit")
    page.wait_for_selector("#new_email-error")
    assert "メールアドレスか電話番号" in page.inner_text("#new_email-error")
    assert page.get_attribute("#new_email", "aria-invalid") == "true"
    assert page.input_value("#subject") == "はじめての電話"  # nothing typed is lost


def test_intake_page_is_accessible(page, live_server, browser_login):
    browser_login(page, "agent1@helpdesk.example.jp")
    page.goto(f"{live_server}/agent/intake")
    page.fill("#caller_search", "千代田")
    page.wait_for_selector("#caller-listbox [role=option]")
    violations = run_axe(page)
    assert violations == [], violations
