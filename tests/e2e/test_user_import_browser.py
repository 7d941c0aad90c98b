"""Issue 16.7 in a browser: upload a user file, read the dry run (rename side by side), confirm, progress to 100 %."""
from pathlib import Path

import pytest

from tests.e2e.conftest import run_axe

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"
HEADER = "email,name,org_code,org_name,org_kind,prefecture,roles\n"


def _naha(session):
    """An organisation of this test's own (the demo's are shared by other browser tests) with one user."""
    from sqlalchemy import select

    from helpdesk.accounts.models import Organisation, User

    org = session.scalar(select(Organisation).where(Organisation.code == "472018"))
    if org is None:
        org = Organisation(code="472018", name="沖縄県那覇市", kind="municipality", prefecture="沖縄県")
        session.add(org)
        session.flush()
    org.name = "沖縄県那覇市"
    for email, name in (("naha1@city.example.jp", "比嘉 一郎"), ("naha-moved@city.example.jp", "金城 花子")):
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            session.add(User(email=email, name=name, roles="requester", organisation_id=org.id))
    moved = session.scalar(select(User).where(User.email == "naha-moved@city.example.jp"))
    if moved is not None:
        kawasaki = session.scalar(select(Organisation).where(Organisation.code == "141305"))
        moved.organisation_id, moved.roles = kawasaki.id, "requester"


def test_upload_dry_run_rename_confirm_progress(page, live_server, browser_login, in_live_app, tmp_path):
    from playwright.sync_api import expect

    in_live_app(_naha)
    text = (HEADER
            + "naha1@city.example.jp,比嘉 一郎,472018,那覇市役所,municipality,沖縄県,requester\n"
            + "naha-moved@city.example.jp,金城 花子,472018,那覇市役所,municipality,沖縄県,requester supervisor\n"
            + "naha-new@city.example.jp,新垣 次郎,472018,那覇市役所,自治体,沖縄県,利用者\n"
            + "broken-address,名前,472018,那覇市役所,municipality,沖縄県,requester\n")
    path = tmp_path / "naha_users.csv"
    path.write_bytes(text.encode("cp932"))  # as Excel saves it in Japan

    browser_login(page, "admin@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/admin")
    page.get_by_role("navigation", name="管理メニュー").get_by_role("link", name="一括登録").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "ユーザーの一括登録"
    assert "Shift_JIS" in page.locator("#file-hint").inner_text()
    assert run_axe(page) == []
    page.get_by_label("CSVファイル").set_input_files(str(path))
    page.get_by_role("button", name="内容を確認する（まだ登録しません）").click()
    page.wait_for_load_state("networkidle")

    # the dry run: nothing written yet, the rename side by side, the move, the refused line with its reason
    assert page.locator("h1").inner_text() == "一括登録の内容確認"
    assert "Shift_JIS (cp932)" in page.locator("main").inner_text()
    rename = page.locator("#import-renames tbody tr").first
    cells = rename.locator("td").all_inner_texts()
    assert cells[0] == "472018" and cells[2] == "沖縄県那覇市" and cells[3] == "那覇市役所", cells
    old_box, new_box = rename.locator("td.old").bounding_box(), rename.locator("td.new").bounding_box()
    assert abs(old_box["y"] - new_box["y"]) < 2 and new_box["x"] > old_box["x"]  # side by side
    moved = page.locator("#import-updated tbody tr", has_text="naha-moved@city.example.jp")
    assert moved.locator("td.old").inner_text() == "神奈川県川崎市"
    assert moved.locator("td.new").inner_text() == "那覇市役所"
    assert "利用者 → 利用者、スーパーバイザー" in moved.inner_text()
    refused = page.locator("#import-refused tbody tr").first.locator("td").all_inner_texts()
    assert refused[0] == "5" and "メールアドレスの形式" in refused[1]
    assert page.locator('[data-count="created"]').inner_text() == "1"
    assert run_axe(page) == []
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "16_7_import_dry_run.png"), full_page=True)

    # confirming without acknowledging the rename is refused next to the checkbox
    page.get_by_role("button", name="この内容で登録する").click()
    page.wait_for_load_state("networkidle")
    error = page.locator("#renames_ok-error")
    assert "チェックを入れて" in error.inner_text()
    assert page.locator("#renames_ok").get_attribute("aria-describedby") == "renames_ok-error"
    page.get_by_label("上の組織名の変更を確認しました。この内容で組織名を変更します。").check()
    page.get_by_role("button", name="この内容で登録する").click()
    page.wait_for_load_state("networkidle")

    assert page.locator("h1").inner_text() == "一括登録の実行状況"
    expect(page.locator("#import-percent")).to_have_text("100 %")
    assert page.locator("#import-progress").evaluate("e => e.value") == 100
    assert page.locator("#import-state").inner_text() == "完了しました"
    summary = page.locator("#import-summary").inner_text()
    assert "472018: 沖縄県那覇市 → 那覇市役所" in summary
    assert run_axe(page) == []
    page.screenshot(path=str(SCREENS / "16_7_import_done.png"), full_page=True)

    def check(session):
        from sqlalchemy import select

        from helpdesk.accounts.models import Organisation, User

        org = session.scalar(select(Organisation).where(Organisation.code == "472018"))
        moved = session.scalar(select(User).where(User.email == "naha-moved@city.example.jp"))
        new = session.scalar(select(User).where(User.email == "naha-new@city.example.jp"))
        return org.name, moved.organisation_id == org.id, moved.roles, new is not None

    assert in_live_app(check) == ("那覇市役所", True, "requester supervisor", True)


def _running_import(session):
    """A confirmed import half-way through, as a worker on another node would leave it between two writes."""
    import secrets

    from helpdesk.accounts.models import UserImport

    row = UserImport(public_id=secrets.token_urlsafe(16)[:22], filename="halfway.csv", size=0, sha256="0" * 64,
                     encoding="UTF-8", status="running", plan={"counts": {}}, total=200, done=90)
    session.add(row)
    session.flush()
    return row.id, row.public_id


def test_progress_bar_follows_the_job_by_polling(page, live_server, browser_login, in_live_app):
    from playwright.sync_api import expect

    import_id, public_id = in_live_app(_running_import)
    browser_login(page, "admin@helpdesk.example.jp")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/admin/users/import/{public_id}")
    bar = page.locator("progress#import-progress")
    assert bar.get_attribute("value") == "45" and page.get_by_label("進み具合").count() == 1
    assert page.locator("#import-state").inner_text() == "登録しています"
    assert run_axe(page) == []

    def advance(done, status="running", result=None):
        def run(session):
            from helpdesk.accounts.models import UserImport

            row = session.get(UserImport, import_id)
            row.done, row.status, row.result = done, status, result
        in_live_app(run)

    page.evaluate("() => { window.notReloaded = true; }")
    advance(150)
    expect(page.locator("#import-percent")).to_have_text("75 %")  # no reload: the script moved the bar
    assert bar.evaluate("e => e.value") == 75 and page.evaluate("() => window.notReloaded") is True
    page.screenshot(path=str(SCREENS / "16_7_import_progress.png"))
    counts = {"lines": 100, "created": 98, "updated": 0, "unchanged": 0, "failed": 2, "organisations_created": 3,
              "organisations_updated": 0, "organisations_renamed": 0, "encoding": "UTF-8"}
    advance(200, "done", {"counts": counts, "errors": [[4, "氏名（name）が空です。"], [9, "組織区分（org_kind）が空です。"]],
                          "errors_total": 2, "org_renames": []})
    page.wait_for_selector("#import-summary")  # the page reloads itself when the job ends
    assert page.evaluate("() => window.notReloaded") is None
    assert page.locator("#import-progress").evaluate("e => e.value") == 100
    assert "98" in page.locator("#import-summary").inner_text()
    assert page.locator("#import-refused tbody tr").count() == 2
