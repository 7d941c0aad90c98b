"""Issue 16.7: user import in the browser — upload, dry run kept server-side, confirm, job, progress, audit."""
from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from helpdesk.accounts import bulk_import
from helpdesk.accounts.importer import import_users
from helpdesk.accounts.models import AuditLog, Organisation, User
from helpdesk.audit import Actor

HEADER = "email,name,org_code,org_name,org_kind,prefecture,roles\n"
GOOD = (HEADER
        + "tanaka@city.example.jp,田中 一郎,131016,東京都千代田区,municipality,東京都,requester\n"
        + "suzuki@clinic.example.jp,鈴木 花子,1310160001,千代田内科,clinic,東京都,requester\n"
        + "kato@med.example.jp,加藤 次郎,W0009,東日本薬品株式会社,wholesaler,東京都,\n")


@pytest.fixture
def admin(make_user, login):
    user = make_user(roles="admin", email="import-admin@helpdesk.example.jp", name="管理 一括")
    login(user)
    return user


def upload(client, data: bytes, name: str = "users.csv"):
    return client.post("/admin/users/import", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def checked_id(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    match = re.search(r"/admin/users/import/([A-Za-z0-9_-]+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def users_count(db) -> int:
    return db.session.scalar(select(func.count(User.id)))


def test_upload_shows_the_dry_run_and_writes_no_user(client, db, admin):
    before = users_count(db)
    public_id = checked_id(upload(client, GOOD.encode()))
    page = client.get(f"/admin/users/import/{public_id}").get_data(as_text=True)
    assert 'data-count="created">3<' in page and 'data-count="failed">0<' in page
    assert "tanaka@city.example.jp" in page and "千代田内科" in page
    assert "この内容で登録する" in page
    assert users_count(db) == before  # a dry run only
    row = bulk_import.find(db.session, public_id)
    assert row.status == "checked" and row.data == GOOD.encode() and row.encoding == "UTF-8"
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "users.import_checked")).all()
    assert len(audit) == 1 and audit[0].actor_id == admin.id and audit[0].detail["created"] == 3


def test_confirm_runs_the_job_on_the_stored_file(client, db, admin):
    public_id = checked_id(upload(client, GOOD.encode()))
    # a file sent along with the confirmation is ignored: the stored, checked bytes are imported
    other = (HEADER + "intruder@example.jp,侵入 者,131016,東京都千代田区,municipality,東京都,requester\n").encode()
    response = client.post(f"/admin/users/import/{public_id}/confirm",
                           data={"file": (io.BytesIO(other), "other.csv")}, content_type="multipart/form-data")
    assert response.status_code == 302
    db.session.expire_all()
    emails = set(db.session.scalars(select(User.email)))
    assert {"tanaka@city.example.jp", "suzuki@clinic.example.jp", "kato@med.example.jp"} <= emails
    assert "intruder@example.jp" not in emails
    row = bulk_import.find(db.session, public_id)
    assert row.status == "done" and row.percent == 100 and row.data is None  # the file is not kept
    assert row.result["counts"]["created"] == 3
    status = client.get(f"/admin/users/import/{public_id}/status").get_json()
    assert status["status"] == "done" and status["percent"] == 100 and status["counts"]["created"] == 3
    page = client.get(f"/admin/users/import/{public_id}").get_data(as_text=True)
    assert '<progress id="import-progress" max="100" value="100">' in page and "完了しました" in page
    imported = db.session.scalar(select(AuditLog).where(AuditLog.action == "users.imported"))
    assert imported.actor_id == admin.id and imported.detail["import_id"] == public_id
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "users.import_confirmed")) == 1
    # confirming twice does not import twice
    again = client.post(f"/admin/users/import/{public_id}/confirm", data={})
    assert again.status_code == 302
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "users.imported")) == 1


def test_org_rename_is_shown_side_by_side_and_needs_the_checkbox(client, db, admin, make_org, make_user):
    city = make_org(kind="municipality", code="131016", name="東京都千代田区")
    other = make_org(kind="municipality", code="131024", name="東京都中央区")
    moved = make_user(email="moved@city.example.jp", name="移動 太郎", org=other, roles="requester")
    staying = make_user(email="stay@city.example.jp", name="残留 花子", org=city, roles="requester")
    text = (HEADER
            + f"{moved.email},移動 太郎,131016,千代田区役所,municipality,東京都,requester supervisor\n"
            + f"{staying.email},残留 花子,131016,千代田区役所,municipality,東京都,requester\n")
    public_id = checked_id(upload(client, text.encode()))
    page = client.get(f"/admin/users/import/{public_id}").get_data(as_text=True)
    renames = page[page.index('id="import-renames"'):]
    renames = renames[:renames.index("</table>")]
    assert re.search(r'<td class="old">東京都千代田区</td>\s*<td class="new"><strong>千代田区役所</strong>', renames)
    assert "1 人" in renames  # users already in the renamed organisation
    updated = page[page.index('id="import-updated"'):]
    updated = updated[:updated.index("</table>")]
    assert re.search(r'<td class="old">東京都中央区</td>\s*<td class="new"><strong>千代田区役所</strong>', updated)
    assert "利用者 → <strong>利用者、スーパーバイザー</strong>" in updated
    assert "上の組織名の変更を確認しました" in page

    refused = client.post(f"/admin/users/import/{public_id}/confirm", data={})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert 'class="field-error" id="renames_ok-error"' in body and "チェックを入れて" in body
    db.session.expire_all()
    assert db.session.get(Organisation, city.id).name == "東京都千代田区"

    assert client.post(f"/admin/users/import/{public_id}/confirm", data={"renames_ok": "y"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Organisation, city.id).name == "千代田区役所"
    user = db.session.get(User, moved.id)
    assert user.organisation_id == city.id and user.roles == "requester supervisor"
    imported = db.session.scalar(select(AuditLog).where(AuditLog.action == "users.imported"))
    assert imported.detail["organisation_renames"] == [["131016", "東京都千代田区", "千代田区役所"]]


def test_rename_not_shown_at_the_dry_run_is_refused_by_the_job(db, make_org, make_user):
    admin = make_user(roles="admin")
    actor = Actor.for_user(admin)
    city = make_org(kind="municipality", code="131016", name="東京都千代田区")
    row = bulk_import.check_upload(db.session, GOOD.encode(), "users.csv", actor)
    assert row.plan["org_renames"] == []  # the file keeps the registered name
    city.name = "旧千代田区"  # someone renames it between the dry run and the confirmation
    db.session.commit()
    bulk_import.confirm_import(db.session, row.public_id, actor, renames_ok=False)
    db.session.expire_all()
    row = bulk_import.find(db.session, row.public_id)
    assert row.status == "done"
    assert db.session.get(Organisation, city.id).name == "旧千代田区"  # not silently renamed back
    assert any(line == 2 and "確認されていない" in message
               for line, message in bulk_import.refused_rows(row.result))
    emails = set(db.session.scalars(select(User.email)))
    assert "tanaka@city.example.jp" not in emails and "kato@med.example.jp" in emails


def test_refused_lines_listed_with_line_numbers_and_csv(client, db, admin):
    text = (GOOD
            + "not-an-email,名前,131016,東京都千代田区,municipality,東京都,requester\n"
            + "boss@city.example.jp,名前,131016,東京都千代田区,municipality,東京都,admin\n")
    public_id = checked_id(upload(client, text.encode()))
    page = client.get(f"/admin/users/import/{public_id}").get_data(as_text=True)
    refused = page[page.index('id="import-refused"'):]
    assert re.search(r'<td class="num">5</td><td>メールアドレスの形式が正しくありません', refused)
    assert re.search(r'<td class="num">6</td><td>管理者（admin）の権限は一括登録では付与できません', refused)
    assert 'data-count="failed">2<' in page and 'data-count="created">3<' in page
    response = client.get(f"/admin/users/import/{public_id}/refused.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["行", "理由"] and [r[0] for r in rows[1:]] == ["5", "6"]


@pytest.mark.parametrize("encoding,data,label", [
    ("cp932", GOOD.encode("cp932"), "Shift_JIS (cp932)"),
    ("bom", b"\xef\xbb\xbf" + GOOD.encode(), "UTF-8 (BOM)"),
])
def test_cp932_and_bom_files(client, db, admin, encoding, data, label):
    public_id = checked_id(upload(client, data))
    page = client.get(f"/admin/users/import/{public_id}").get_data(as_text=True)
    assert label in page and "田中 一郎" in page
    client.post(f"/admin/users/import/{public_id}/confirm", data={})
    db.session.expire_all()
    assert db.session.scalar(select(User.name).where(User.email == "tanaka@city.example.jp")) == "田中 一郎"
    assert db.session.scalar(select(Organisation.name).where(Organisation.code == "1310160001")) == "千代田内科"


@pytest.mark.parametrize("data,message", [
    (b"", "ファイルが空です"),
    (b"\xef\xbb\xbf\r\n", "ファイルが空です"),
    ("email,name\nx@y.jp,名前\n".encode(), "見出しに次の列がありません: org_code"),
    (b"email,name\n\x81 \x82 ", "文字コードを判別できません"),
])
def test_file_errors_next_to_the_field(client, db, admin, data, message):
    response = upload(client, data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    error = page[page.index('id="file-error"'):]
    assert message in error[:400]
    assert 'aria-invalid="true"' in page
    assert db.session.scalar(select(func.count(bulk_import.UserImport.id))) == 0


def test_no_file_chosen(client, db, admin):
    response = client.post("/admin/users/import", data={}, content_type="multipart/form-data")
    assert "CSVファイルを選んでください" in response.get_data(as_text=True)


def test_file_over_the_limit_is_refused_in_words(app, client, db, admin):
    app.config["USER_IMPORT_MAX_BYTES"] = 1024 * 1024
    try:
        response = upload(client, GOOD.encode() + b"x" * (1024 * 1024 + 10))
    finally:
        app.config.pop("USER_IMPORT_MAX_BYTES")
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "ファイルが大きすぎます（上限 1 MB）" in page and 'id="file"' in page


def test_site_limit_does_not_cap_the_user_file(app, client, db, admin):
    # The user file may be larger than the site-wide MAX_CONTENT_LENGTH (12 MB by default).
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1024
    try:
        data = GOOD.encode() + b"\n" * 4000
        assert checked_id(upload(client, data))
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old


def test_only_admins(client, db, make_user, login):
    supervisor = make_user(roles="supervisor agent")
    login(supervisor)
    assert client.get("/admin/users/import").status_code == 403
    assert upload(client, GOOD.encode()).status_code == 403


def test_upload_page_is_in_the_admin_menu_with_a_labelled_input(client, db, admin):
    page = client.get("/admin/users/import").get_data(as_text=True)
    menu = page[page.index('class="admin-menu"'):]
    assert 'href="/admin/users/import" aria-current="page">一括登録' in menu
    assert '<label for="file">CSVファイル</label>' in page and 'enctype="multipart/form-data"' in page
    assert "Shift_JIS" in page and "UTF-8" in page


def test_expired_dry_runs_are_purged(db, make_user):
    import datetime as dt

    admin = make_user(roles="admin")
    row = bulk_import.check_upload(db.session, GOOD.encode(), "old.csv", Actor.for_user(admin))
    row.created_at = row.created_at - dt.timedelta(hours=25)
    db.session.commit()
    with pytest.raises(bulk_import.ImportConfirmError):
        bulk_import.confirm_import(db.session, row.public_id, Actor.for_user(admin), renames_ok=True)
    db.session.rollback()
    assert bulk_import.purge_expired(db.session) == 1


def test_cli_dry_run_lists_renames(db, make_org):
    make_org(kind="municipality", code="131016", name="東京都千代田区")
    result = import_users(db.session, GOOD.replace("東京都千代田区", "千代田区役所").encode(), actor=Actor.system(),
                          dry_run=True, details=10)
    assert result.org_renames == [{"code": "131016", "kind": "municipality", "old": "東京都千代田区",
                                   "new": "千代田区役所", "users": 0}]
    assert [u["email"] for u in result.created_users] == ["tanaka@city.example.jp", "suzuki@clinic.example.jp",
                                                          "kato@med.example.jp"]
    assert result.created_users[0]["org"] == "千代田区役所"


def test_cli_prints_organisation_renames(app, db, make_org, tmp_path, monkeypatch):
    monkeypatch.setattr("helpdesk.cli.ensure_db", lambda: None)  # the test schema is made by create_all()
    make_org(kind="municipality", code="131016", name="東京都千代田区")
    path = tmp_path / "users.csv"
    path.write_bytes(GOOD.replace("東京都千代田区", "千代田区役所").encode())
    from helpdesk.accounts.cli import import_users_cli

    result = app.test_cli_runner().invoke(import_users_cli, [str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "[dry run] 組織名の変更 / organisation renamed: 131016: 東京都千代田区 → 千代田区役所" in result.output


def test_progress_steps_add_up_to_the_total(db):
    steps = []
    result = import_users(db.session, GOOD.encode(), actor=Actor.system(), progress=steps.append)
    assert sum(steps) == result.lines + 2 * result.created + result.updated


def test_pages_in_english_for_an_english_admin(client, db, make_user, login):
    login(make_user(roles="admin"))
    client.post("/lang", data={"lang": "en", "next": "/admin"})
    import flask_babel

    flask_babel.refresh()  # the test's app context outlives requests and keeps the locale cached in it
    page = client.get("/admin/users/import").get_data(as_text=True)
    assert "<h1>User import</h1>" in page and "Check the file (nothing is saved yet)" in page
    public_id = checked_id(upload(client, GOOD.encode()))
    page = client.get(f"/admin/users/import/{public_id}").get_data(as_text=True)
    assert "Check the user import" in page and "Import as shown" in page
