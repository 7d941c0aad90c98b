"""Kana readings: folding, guessing, import-users and the caller search by reading (SQLite and PostgreSQL)."""
import pytest

from helpdesk.accounts import kana
from helpdesk.accounts.importer import import_users
from helpdesk.accounts.models import Organisation, User
from helpdesk.audit import Actor
from helpdesk.tickets.contacts import search_contacts

HEADER = "email,name,org_code,org_name,org_kind,prefecture,roles"


def test_fold_makes_hiragana_katakana_and_half_width_the_same():
    assert kana.fold("たなか") == kana.fold("タナカ") == kana.fold("ﾀﾅｶ") == "タナカ"
    assert kana.fold("タナカ　タロウ") == "タナカタロウ"
    assert kana.is_kana("ﾀﾅｶ") and kana.is_kana("たなか") and not kana.is_kana("田中") and not kana.is_kana("tanaka")


def test_guess_reads_a_name_and_refuses_partial_readings():
    assert kana.guess("田中 太郎") == "タナカタロウ"
    assert kana.guess("千代田内科クリニック") == "チヨダナイカクリニック"
    assert kana.guess("ABC商事") is None  # a word without a reading: no half guess


def test_normalize_reading_refuses_kanji():
    assert kana.normalize_reading("やまだ はなこ") == "ヤマダハナコ"
    assert kana.normalize_reading("") is None
    with pytest.raises(ValueError):
        kana.normalize_reading("山田")


def _import(db, text):
    return import_users(db.session, text.encode("utf-8"), actor=Actor.system("test"), source="t.csv")


def test_import_users_takes_the_reading_from_the_csv_or_guesses_it(db):
    result = _import(db, HEADER + ",name_kana,org_name_kana\n"
                     "a@k.example.jp,東海林 太郎,131016,千代田区,municipality,東京都,requester,しょうじ たろう,ちよだく\n"
                     "b@k.example.jp,田中 花子,131016,千代田区,municipality,東京都,requester,,\n"
                     "c@k.example.jp,山田 一郎,131016,千代田区,municipality,東京都,requester,山田,\n")
    assert result.created == 2
    assert [e[0] for e in result.errors] == [4]  # a reading in kanji is refused with its line
    users = {u.email: u for u in db.session.query(User).filter(User.email.like("%@k.example.jp"))}
    assert users["a@k.example.jp"].name_kana == "ショウジタロウ"  # the file's reading wins over the guess
    assert users["b@k.example.jp"].name_kana == "タナカハナコ"  # guessed
    assert db.session.query(Organisation).filter_by(code="131016").one().name_kana == "チヨダク"
    # Re-import without readings keeps the explicit one (the name did not change).
    result = _import(db, HEADER + "\na@k.example.jp,東海林 太郎,131016,千代田区,municipality,東京都,requester\n")
    assert result.unchanged == 1
    db.session.expire_all()
    assert db.session.get(User, users["a@k.example.jp"].id).name_kana == "ショウジタロウ"


@pytest.mark.parametrize("query", ["タナカ", "たなか", "ﾀﾅｶ", "たなか はなこ", "ﾀﾅｶﾊﾅｺ"])
def test_caller_search_matches_the_reading_in_any_kana(db, make_org, make_user, query):
    org = make_org(kind="clinic", name="港南内科")
    tanaka = make_user(org=org, name="田中 花子", name_kana="タナカハナコ")
    make_user(org=org, name="中田 一郎", name_kana="ナカタイチロウ")
    found = [c.id for c in search_contacts(db.session, query)]
    assert found and found[0] == tanaka.id
    assert len(found) == 1


def test_caller_search_matches_the_organisation_reading(db, make_org, make_user):
    org = make_org(kind="clinic", name="港南内科")
    org.name_kana = "コウナンナイカ"
    db.session.commit()
    user = make_user(org=org, name="鈴木 一郎", name_kana="スズキイチロウ")
    assert [c.id for c in search_contacts(db.session, "こうなん")] == [user.id]
    assert [c.id for c in search_contacts(db.session, "ｺｳﾅﾝ すずき")] == [user.id]


def test_fill_missing_guesses_readings(db, make_org, make_user):
    org = make_org(name="千代田区")
    user = make_user(org=org, name="佐藤 健")
    assert user.name_kana is None
    assert kana.fill_missing(db.session) >= 2
    db.session.expire_all()
    assert db.session.get(User, user.id).name_kana == "サトウケン"
    assert db.session.get(Organisation, org.id).name_kana == "チヨダク"
