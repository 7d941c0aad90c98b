"""import-users: per-line errors, valid lines kept, idempotent re-import, encodings, CLI."""
from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from helpdesk.accounts.importer import decode, import_users, validate_row
from helpdesk.accounts.models import AuditLog, Organisation, User
from helpdesk.audit import Actor

HEADER = "email,name,org_code,org_name,org_kind,prefecture,roles\n"
GOOD = (HEADER
        + "tanaka@city.example.jp,田中 一郎,131016,東京都千代田区,municipality,東京都,requester\n"
        + "suzuki@clinic.example.jp,鈴木 花子,1310160001,千代田内科,clinic,東京都,requester\n"
        + "kato@med.example.jp,加藤 次郎,W0009,東日本薬品株式会社,wholesaler,東京都,\n")


def run(db, text: str, encoding: str = "utf-8", **kw):
    return import_users(db.session, text.encode(encoding), actor=Actor.system("test"), source="t.csv", **kw)


def count(db, model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def test_valid_file_creates_orgs_then_users(db):
    result = run(db, GOOD)
    assert (result.created, result.updated, result.unchanged, result.failed) == (3, 0, 0, 0)
    assert result.orgs_created == 3
    clinic = db.session.scalar(select(Organisation).where(Organisation.code == "1310160001"))
    assert clinic.parent is not None and clinic.parent.code == "131016"
    user = db.session.scalar(select(User).where(User.email == "suzuki@clinic.example.jp"))
    assert user.state == "invited" and user.password_hash is None and user.must_change_password
    assert user.organisation_id == clinic.id and user.roles == "requester"
    assert db.session.scalar(select(User.roles).where(User.email == "kato@med.example.jp")) == "requester"


def test_errors_by_line_and_valid_lines_kept(db):
    text = (HEADER
            + "ok1@city.example.jp,山田 太郎,131016,東京都千代田区,municipality,東京都,requester\n"   # line 2
            + "not-an-email,名前,131016,東京都千代田区,municipality,東京都,requester\n"              # line 3
            + "x@y.example.jp,,131016,東京都千代田区,municipality,東京都,requester\n"                # line 4
            + "k@y.example.jp,名前,131016,東京都千代田区,hospital,東京都,requester\n"                 # line 5
            + "r@y.example.jp,名前,131016,東京都千代田区,municipality,東京都,superuser\n"             # line 6
            + "c@y.example.jp,名前,9999990001,孤立医院,clinic,東京都,requester\n"                     # line 7
            + "ok1@city.example.jp,山田 重複,131016,東京都千代田区,municipality,東京都,requester\n"  # line 8
            + "a@y.example.jp,名前,131016,東京都千代田区,municipality,東京都,admin\n"                # line 9
            + "ok2@clinic.example.jp,佐藤 花子,1310160002,神田医院,clinic,東京,requester\n")         # line 10
    result = run(db, text)
    by_line = {}
    for line, message in result.errors:
        by_line.setdefault(line, []).append(message)
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9]
    assert "メールアドレスの形式" in by_line[3][0]
    assert "氏名" in by_line[4][0]
    assert "hospital" in by_line[5][0]
    assert "superuser" in by_line[6][0]
    assert "所属自治体" in by_line[7][0] and "999999" in by_line[7][0]
    assert "2 行目" in by_line[8][0]
    assert "管理者" in by_line[9][0]
    assert result.created == 2 and result.failed == 7
    emails = set(db.session.scalars(select(User.email)))
    assert {"ok1@city.example.jp", "ok2@clinic.example.jp"} <= emails
    assert "c@y.example.jp" not in emails
    # nothing half-written: the orphan clinic of the refused line 7 was not created
    assert db.session.scalar(select(Organisation).where(Organisation.code == "9999990001")) is None
    # "東京" was understood as 東京都
    assert db.session.scalar(select(Organisation.prefecture).where(Organisation.code == "1310160002")) == "東京都"


def test_reimport_updates_and_never_duplicates(db):
    run(db, GOOD)
    users_before, orgs_before = count(db, User), count(db, Organisation)
    again = run(db, GOOD)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    changed = GOOD.replace("田中 一郎", "田中 一朗").replace("kato@med.example.jp,加藤 次郎,W0009,東日本薬品株式会社,"
                                                        "wholesaler,東京都,",
                                                        "kato@med.example.jp,加藤 次郎,W0009,東日本薬品株式会社,"
                                                        "wholesaler,東京都,requester supervisor")
    third = run(db, changed)
    assert (third.created, third.updated, third.unchanged) == (0, 2, 1)
    assert count(db, User) == users_before and count(db, Organisation) == orgs_before
    assert db.session.scalar(select(User.name).where(User.email == "tanaka@city.example.jp")) == "田中 一朗"
    assert db.session.scalar(select(User.roles).where(User.email == "kato@med.example.jp")) == "requester supervisor"


def test_reimport_moves_a_user_to_another_organisation(db):
    run(db, GOOD)
    moved = HEADER + "suzuki@clinic.example.jp,鈴木 花子,131016,東京都千代田区,municipality,東京都,requester\n"
    result = run(db, moved)
    assert result.updated == 1
    user = db.session.scalar(select(User).where(User.email == "suzuki@clinic.example.jp"))
    assert user.organisation.code == "131016"


def test_email_is_normalised_and_case_insensitive(db):
    run(db, GOOD)
    upper = HEADER + "ＴＡＮＡＫＡ@City.Example.JP,田中 一郎,131016,東京都千代田区,municipality,東京都,requester\n"
    result = run(db, upper)
    assert result.unchanged == 1 and result.created == 0


def test_cp932_file_is_detected(db):
    result = run(db, GOOD, encoding="cp932")
    assert result.encoding.startswith("Shift_JIS") and result.created == 3
    assert db.session.scalar(select(User.name).where(User.email == "tanaka@city.example.jp")) == "田中 一郎"


def test_utf8_with_bom(db):
    result = import_users(db.session, b"\xef\xbb\xbf" + GOOD.encode(), actor=Actor.system())
    assert result.encoding == "UTF-8 (BOM)" and result.created == 3


def test_undecodable_file_is_refused_as_a_whole():
    try:
        decode(b"email\n\xff\xfe\xfd\x80\x81")
    except Exception as exc:
        assert "UTF-8" in str(exc)
    else:
        raise AssertionError("garbage accepted")


def test_missing_header_columns(db):
    try:
        run(db, "email,name\nx@y.jp,a\n")
    except Exception as exc:
        assert "org_code" in str(exc)
    else:
        raise AssertionError("missing columns accepted")


def test_kind_conflict_with_existing_org(db, make_org):
    make_org(kind="wholesaler", code="131016")
    result = run(db, GOOD)
    assert any(line == 2 and "既に" in msg for line, msg in result.errors)
    # the clinic whose municipality code belongs to a wholesaler is refused too
    assert any(line == 3 for line, _ in result.errors)
    assert result.created == 1


def test_admin_accounts_are_not_changed_by_import(db, make_user, make_org):
    org = make_org(kind="municipality", code="131016", name="東京都千代田区")
    make_user(roles="admin", email="boss@city.example.jp", org=org, name="管理 者")
    result = run(db, HEADER + "boss@city.example.jp,別人,131016,東京都千代田区,municipality,東京都,requester\n")
    assert result.failed == 1 and "管理者" in result.errors[0][1]
    assert db.session.scalar(select(User.roles).where(User.email == "boss@city.example.jp")) == "admin"


def test_dry_run_writes_nothing(db):
    result = run(db, GOOD, dry_run=True)
    assert result.created == 3 and result.orgs_created == 3
    assert count(db, User) == 0 and count(db, Organisation) == 0


def test_one_audit_row_with_counts(db):
    run(db, GOOD)
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "users.imported")).all()
    assert len(rows) == 1 and rows[0].detail["created"] == 3 and rows[0].detail["failed"] == 0


def test_initial_passwords_work_for_login(db, client):
    result = run(db, GOOD, initial_passwords=True)
    assert len(result.passwords) == 3
    email, _name, _org, password = result.passwords[0]
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302 and "/account/password" in response.headers["Location"]


def test_stray_comma_and_blank_lines(db):
    text = HEADER + "\n" + "a@b.example.jp,名前,131016,千代田区,municipality,東京都,requester,extra\n"
    result = run(db, text)
    assert result.failed == 1 and result.errors[0][0] == 3 and "列の数" in result.errors[0][1]


def test_validate_row_accepts_japanese_aliases():
    item, errors = validate_row(2, {"email": "a@b.example.jp", "name": "ｻﾄｳ　ﾀﾛｳ", "org_code": "１３１０１６",
                                    "org_name": "千代田区", "org_kind": "自治体", "prefecture": "東京都",
                                    "roles": "利用者"})
    assert errors == []
    assert item.org_kind == "municipality" and item.org_code == "131016" and item.name == "サトウ タロウ"


def test_cli_reports_lines_and_exit_code(app, db, tmp_path, monkeypatch):
    monkeypatch.setattr("helpdesk.cli.ensure_db", lambda: None)  # the test schema is made by create_all()
    path = tmp_path / "users.csv"
    path.write_bytes((GOOD + "bad,名前,131016,千代田区,municipality,東京都,requester\n").encode("cp932"))
    out = tmp_path / "pw.csv"
    runner = app.test_cli_runner()
    from helpdesk.accounts.cli import import_users_cli

    result = runner.invoke(import_users_cli, [str(path), "--initial-passwords", str(out)])
    assert result.exit_code == 1, result.output
    assert "Shift_JIS" in result.output
    assert f"{path}:5:" in result.output
    assert "created: 3" in result.output and "failed: 1" in result.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["email", "name", "org_code", "initial_password"] and len(rows) == 4
    assert (out.stat().st_mode & 0o777) == 0o600
    clean = tmp_path / "clean.csv"
    clean.write_text(GOOD, encoding="utf-8")
    again = runner.invoke(import_users_cli, [str(clean)])
    assert again.exit_code == 0 and "unchanged: 3" in again.output
