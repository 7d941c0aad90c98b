"""Split a ticket in a browser (issue 17.3): the reply checkboxes are reached and ticked with the keyboard,
the new ticket opens with the moved replies, both timelines say so; axe-checked, screenshots."""
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.e2e.conftest import run_axe

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"


def _conversation(session):
    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.tickets import service

    requester = session.scalar(select(User).where(User.email == "clinic@chiyoda-naika.example.jp"))
    agent = session.scalar(select(User).where(User.email == "agent2@helpdesk.example.jp"))
    req, staff = Actor.for_user(requester), Actor.for_user(agent)
    ticket = service.create_ticket(session, actor=req, subject="ログインできない（分割E2E）", body="入れません。",
                                   requester_id=requester.id, category="login")
    service.add_comment(session, ticket.id, "パスワードを再設定しました。", staff)
    question = service.add_comment(session, ticket.id, "別件ですが、廃棄の報告方法を教えてください。", req)
    answer = service.add_comment(session, ticket.id, "廃棄報告の画面からお願いします。", staff)
    return ticket.ref, question.id, answer.id


def test_agent_splits_replies_with_the_keyboard(page, live_server, browser_login, in_live_app):
    SCREENS.mkdir(parents=True, exist_ok=True)
    ref, question_id, answer_id = in_live_app(_conversation)
    browser_login(page, "agent2@helpdesk.example.jp")
    page.goto(f"{live_server}/tickets/{ref}")
    first = page.locator(f"input[name=comment_ids][value='{question_id}']")
    second = page.locator(f"input[name=comment_ids][value='{answer_id}']")
    # Keyboard: focus the first box, tick it with Space; Tab reaches the next reply's box.
    first.focus()
    page.keyboard.press("Space")
    assert first.is_checked()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.value === '{answer_id}'"):
            break
    assert page.evaluate(f"document.activeElement.value === '{answer_id}'")
    page.keyboard.press("Space")
    assert second.is_checked()
    page.fill("#split-subject", "廃棄の報告方法（分割E2E）")
    assert run_axe(page) == []
    page.locator("#split").screenshot(path=str(SCREENS / "17_3_split_form.png"))
    page.click("#split-form button[type=submit]")
    page.wait_for_selector(".flash--success")
    assert "新しいチケット" in page.inner_text(".flash--success")
    new_ref = page.inner_text("h1 .ref")
    assert new_ref != ref and "廃棄の報告方法（分割E2E）" in page.inner_text("h1")
    timeline = page.inner_text("#timeline")
    assert f"{ref} から分けたチケット（返信 2件）" in timeline
    assert "別件ですが、廃棄の報告方法を教えてください。" in timeline
    assert ref in page.inner_text("#related")  # linked back to the original
    assert run_axe(page) == []
    page.screenshot(path=str(SCREENS / "17_3_split_new_ticket.png"), full_page=True)
    page.goto(f"{live_server}/tickets/{ref}")
    timeline = page.inner_text("#timeline")
    assert f"返信 2件を {new_ref} に分けました" in timeline and "廃棄の報告方法" not in timeline
    # Nothing chosen: the message stands next to the form.
    page.click("#split-form button[type=submit]")
    assert "新しいチケットに分ける返信を1つ以上選んでください。" in page.inner_text("#split-error")
    assert run_axe(page) == []
