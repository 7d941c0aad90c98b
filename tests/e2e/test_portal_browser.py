"""Browser: a requester submits via the portal, sees the agent's public reply but never the internal note."""
import re

from sqlalchemy import select

from tests.e2e.conftest import run_axe

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17


def test_submit_reply_note_resolve_and_rate(page, live_server, browser_login, in_live_app):
    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.tickets import service
    from helpdesk.tickets.models import Attachment, Ticket

    browser_login(page, "clinic@chiyoda-naika.example.jp")
    page.goto(f"{live_server}/portal")
    page.click("text=新しくお問い合わせする")
    page.fill("#subject", "接種記録が保存できない")
    page.fill("#description", "接種記録の入力画面で保存を押すとエラーになります。")
    assert page.get_attribute("#description", "data-suggest-target") == "#kb-suggestions"
    page.select_option("#category", "vaccination_records")
    page.set_input_files("#files", files=[{"name": "エラー画面.png", "mimeType": "image/png", "buffer": PNG}])
    assert "エラー画面.png" in page.inner_text("[data-file-list-for=files]")
    page.click("main form.portal-form button[type=submit]")
    page.wait_for_selector(".flash--success")
    ref = re.search(r"HD-\d{6}", page.inner_text(".flash--success")).group(0)
    assert page.url.endswith(f"/portal/tickets/{ref}")
    assert "エラー画面.png" in page.inner_text("ol.conversation")

    def agent_answers(session):
        agent = session.scalar(select(User).where(User.email == "agent1@helpdesk.example.jp"))
        ticket = session.scalar(select(Ticket).where(Ticket.subject == "接種記録が保存できない"))
        assert ticket.ref == ref
        assert session.scalar(select(Attachment).where(Attachment.ticket_id == ticket.id)).filename == "エラー画面.png"
        service.add_comment(session, ticket.id, "ブラウザのキャッシュを削除してから、もう一度保存してください。",
                            Actor.for_user(agent), public=True)
        service.add_comment(session, ticket.id, "内部メモ：先週のリリース不具合の可能性あり（開発に確認中）",
                            Actor.for_user(agent), public=False)

    in_live_app(agent_answers)
    page.reload()
    conversation = page.inner_text("ol.conversation")
    assert "ブラウザのキャッシュを削除してから" in conversation
    assert "内部メモ" not in page.content() and "リリース不具合" not in page.content()

    page.fill("#body", "キャッシュを削除したら保存できました。")
    page.click("#reply button[type=submit]")
    page.wait_for_selector(".flash--success")
    assert "キャッシュを削除したら保存できました。" in page.inner_text("ol.conversation")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=問題が解決した")
    page.wait_for_selector("#csat form")
    assert "解決済み" in page.inner_text(".portal-status")
    page.check("input[name=score][value='5']")
    page.fill("#comment", "すぐに解決しました")
    page.click("#csat button[type=submit]")
    page.wait_for_selector(".flash--success")
    assert "評価をいただきました: 5 / 5" in page.inner_text("#csat")
    assert in_live_app(lambda s: s.scalar(select(Ticket.csat_score).where(Ticket.subject == "接種記録が保存できない"))) == 5


def test_portal_pages_are_accessible(page, live_server, browser_login, in_live_app):
    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.tickets import service

    def make(session):
        user = session.scalar(select(User).where(User.email == "kanda@kodomo.example.jp"))
        ticket = service.create_ticket(session, actor=Actor.for_user(user), subject="割当数量の確認",
                                       body="今月の割当数量を確認したい", requester_id=user.id)
        return ticket.ref

    ref = in_live_app(make)
    browser_login(page, "kanda@kodomo.example.jp")
    for path in ("/portal", "/portal/new", f"/portal/tickets/{ref}"):
        page.goto(f"{live_server}{path}")
        violations = run_axe(page)
        assert violations == [], (path, violations)
    # Errors next to the fields, announced: submit the empty form.
    page.goto(f"{live_server}/portal/new")
    page.click("main form.portal-form button[type=submit]")
    page.wait_for_selector("#subject-error")
    assert "件名を入力してください。" in page.inner_text("#subject-error")
    assert page.get_attribute("#subject", "aria-invalid") == "true"
    violations = run_axe(page)
    assert violations == [], violations


def test_municipality_sees_its_clinics_but_not_others(page, live_server, browser_login, in_live_app):
    from helpdesk.accounts.models import User
    from helpdesk.audit import Actor
    from helpdesk.tickets import service

    def make(session):
        refs = {}
        for email, subject in (("kanda@kodomo.example.jp", "神田の問い合わせ"),
                               ("naniwa@clinic.example.jp", "なにわの問い合わせ")):
            user = session.scalar(select(User).where(User.email == email))
            refs[email] = service.create_ticket(session, actor=Actor.for_user(user), subject=subject,
                                                requester_id=user.id).ref
        return refs

    refs = in_live_app(make)
    browser_login(page, "chiyoda@city.example.jp")
    page.goto(f"{live_server}/portal")
    listing = page.inner_text("main")
    assert refs["kanda@kodomo.example.jp"] in listing
    assert refs["naniwa@clinic.example.jp"] not in listing
    response = page.goto(f"{live_server}/portal/tickets/{refs['naniwa@clinic.example.jp']}")
    assert response.status == 404
