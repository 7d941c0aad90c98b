"""Caller look-up for phone intake: Japanese-aware, every identifying field, ranked."""
import pytest

from helpdesk.audit import Actor
from helpdesk.tickets.contacts import ContactError, create_contact, is_placeholder_email, search_contacts


@pytest.fixture
def people(make_org, make_user):
    city = make_org(kind="municipality", name="東京都千代田区", code="131016")
    clinic = make_org(kind="clinic", parent=city, name="神田こども医院", code="1310160002")
    wholesaler = make_org(kind="wholesaler", name="東日本メディカル流通株式会社", code="W0001")
    sato = make_user(org=city, name="佐藤 健一", email="sato@city.example.jp", phone="03-3264-2111")
    ito = make_user(org=clinic, name="伊藤 大輔", email="ito@kodomo.example.jp", phone="0452001234")
    nakamura = make_user(org=wholesaler, name="中村 拓也", email="logistics@east-medical.example.jp")
    gone = make_user(org=city, name="佐藤 退職", email="gone@city.example.jp", state="disabled")
    return {"sato": sato, "ito": ito, "nakamura": nakamura, "gone": gone}


def ids(results):
    return [c.id for c in results]


@pytest.mark.parametrize("query,who", [
    ("佐藤", "sato"),                 # partial kanji (family name)
    ("佐藤健一", "sato"),             # typed without the space the record has
    ("佐藤　健一", "sato"),           # full-width space
    ("伊藤大輔", "ito"),
    ("こども", "ito"),                # kana part of the organisation name
    ("神田", "ito"),
    ("1310160002", "ito"),            # organisation code
    ("w0001", "nakamura"),            # code, case-insensitive
    ("東日本メディカル", "nakamura"),
    ("ﾒﾃﾞｨｶﾙ", "nakamura"),           # half-width katakana (NFKC)
    ("LOGISTICS@EAST", "nakamura"),   # e-mail, any case
    ("0332642111", "sato"),           # phone without hyphens
    ("03-3264", "sato"),
    ("０４５２００", "ito"),          # full-width digits
])
def test_search_finds_the_caller(db, people, query, who):
    results = search_contacts(db.session, query)
    assert people[who].id in ids(results), query


def test_every_word_must_match_and_disabled_users_are_left_out(db, people):
    assert ids(search_contacts(db.session, "千代田 佐藤")) == [people["sato"].id]
    assert search_contacts(db.session, "千代田 中村") == []
    assert people["gone"].id not in ids(search_contacts(db.session, "佐藤"))


def test_exact_matches_rank_first(db, people, make_user, make_org):
    org = make_org(kind="clinic", name="佐藤クリニック", code="C-SATO")
    make_user(org=org, name="山田 花子", email="yamada@sato-clinic.example.jp")
    results = search_contacts(db.session, "sato@city.example.jp")
    assert results[0].id == people["sato"].id
    results = search_contacts(db.session, "佐藤")
    assert results[0].id == people["sato"].id  # name prefix before an organisation-name match


def test_like_wildcards_are_literal(db, people):
    assert search_contacts(db.session, "%") == []
    assert search_contacts(db.session, "_") == []


def test_limit_and_empty_query(db, people):
    assert search_contacts(db.session, "") == []
    assert search_contacts(db.session, "   ") == []
    assert len(search_contacts(db.session, "example", limit=2)) == 2


def test_contacts_endpoint_is_staff_only(client, login, people, agent):
    login(people["sato"])
    assert client.get("/agent/contacts?q=佐藤").status_code == 403
    client.post("/logout")
    login(agent)
    data = client.get("/agent/contacts?q=佐藤").get_json()
    assert data["query"] == "佐藤"
    assert data["results"][0]["name"] == "佐藤 健一"
    assert data["results"][0]["organisation_code"] == "131016"


def test_create_contact_flags_review_and_placeholder_email(db, people, agent):
    user = create_contact(db.session, name="ｽｽﾞｷ 一郎", email="", phone="03-1111-2222", org_code="131016",
                          actor=Actor.for_user(agent))
    assert user.needs_review is True
    assert user.name == "スズキ 一郎"  # NFKC: half-width kana made full-width
    assert is_placeholder_email(user.email) and user.email.startswith("tel0311112222.")
    assert user.organisation.code == "131016" and user.roles == "requester"
    assert user.password_hash is None


def test_create_contact_errors_per_field(db, people, agent):
    with pytest.raises(ContactError) as exc:
        create_contact(db.session, name="", email="", phone="", org_code="999999", actor=Actor.for_user(agent))
    errors = exc.value.field_errors
    assert set(errors) == {"new_name", "new_email", "new_org_code"}
    assert "999999" in errors["new_org_code"]
    with pytest.raises(ContactError) as exc:
        create_contact(db.session, name="佐藤", email="SATO@city.example.jp", phone="", org_code="131016",
                       actor=Actor.for_user(agent))
    assert "既に登録" in exc.value.field_errors["new_email"]
