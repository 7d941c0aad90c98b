"""Custom fields (issue 17.2): definitions, typed values, forms, ticket page, queue filter, CSV, audit."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import select

from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor
from helpdesk.tickets import custom_fields as cf
from helpdesk.tickets import queue
from helpdesk.tickets.models import Ticket, TicketEvent
from werkzeug.datastructures import MultiDict


@pytest.fixture
def admin(make_user):
    return make_user(roles="admin", email="cf-admin@helpdesk.example.jp", name="管理 花子")


@pytest.fixture
def fields(db, admin):
    actor = Actor.for_user(admin)
    made = {
        "lot": cf.create_field(db.session, actor, key="lot_number", label_ja="ロット番号", label_en="Lot number",
                               type="text", required=True, position=1),
        "doses": cf.create_field(db.session, actor, key="doses", label_ja="回数", label_en="Doses", type="number"),
        "due": cf.create_field(db.session, actor, key="delivery_day", label_ja="納品日", label_en="Delivery day",
                               type="date", category="delivery"),
        "pref": cf.create_field(db.session, actor, key="pref", label_ja="都道府県", label_en="Prefecture",
                                type="choice", choices="tokyo | 東京都 | Tokyo\nosaka | 大阪府 | Osaka"),
        "urgent": cf.create_field(db.session, actor, key="urgent", label_ja="至急", label_en="Urgent",
                                  type="checkbox"),
    }
    return made


def test_definitions_are_audited_and_keys_checked(db, admin, fields):
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "custom_field.created")).all()
    assert {r.detail["key"] for r in rows} >= {"lot_number", "doses", "delivery_day", "pref", "urgent"}
    actor = Actor.for_user(admin)
    with pytest.raises(cf.CustomFieldError) as exc:
        cf.create_field(db.session, actor, key="lot_number", label_ja="重複", type="text")
    assert "既に使われています" in exc.value.field_errors["key"]
    with pytest.raises(cf.CustomFieldError) as exc:
        cf.create_field(db.session, actor, key="Lot-No", label_ja="", type="choice", choices="")
    assert set(exc.value.field_errors) == {"key", "label_ja", "choices"}
    cf.update_field(db.session, actor, fields["doses"].id, label_ja="接種回数", label_en="Doses", active=False)
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "custom_field.deactivated"))
    assert row.detail["changes"]["label_ja"] == ["回数", "接種回数"]
    assert row.detail["changes"]["active"] == [True, False]
    assert [f.key for f in cf.fields_for(db.session, None)] == ["pref", "urgent", "lot_number"]


@pytest.mark.parametrize("key, raw, expected", [
    ("lot", " ＡＢ１２３ ", "AB123"), ("doses", "１,２００", 1200.0), ("doses", "1.5", 1.5),
    ("due", "2026/4/1", dt.date(2026, 4, 1)), ("due", "2026年4月1日", dt.date(2026, 4, 1)),
    ("pref", "osaka", "osaka"), ("pref", "東京都", "tokyo"), ("urgent", "on", True), ("urgent", False, False),
    ("lot", "", None),
])
def test_values_are_parsed_by_type(fields, key, raw, expected):
    assert cf.parse_value(fields[key], raw) == expected


@pytest.mark.parametrize("key, raw, message", [
    ("doses", "たくさん", "「回数」は数字で入力してください"),
    ("due", "2026-02-30", "「納品日」は日付を YYYY-MM-DD"),
    ("pref", "kyoto", "「都道府県」は一覧の中から選んでください"),
    ("lot", "x" * 201, "200文字以内"),
    ("lot", "a\nb", "1行で"),
    ("doses", True, "true / false は指定できません"),
])
def test_bad_values_get_a_plain_message(fields, key, raw, message):
    with pytest.raises(ValueError) as exc:
        cf.parse_value(fields[key], raw)
    assert message in str(exc.value)


def test_required_and_category_rules(db, fields):
    with pytest.raises(cf.CustomFieldError) as exc:
        cf.form_values(db.session, MultiDict({"cf_doses": "3"}), None)
    assert exc.value.field_errors == {"cf_lot_number": "「ロット番号」を入力してください。"}
    # The delivery-only date is checked only for a delivery ticket.
    assert cf.form_values(db.session, MultiDict({"cf_lot_number": "L1", "cf_delivery_day": "bad"}), "login") == {
        "lot_number": "L1", "urgent": False}
    with pytest.raises(cf.CustomFieldError) as exc:
        cf.form_values(db.session, MultiDict({"cf_lot_number": "L1", "cf_delivery_day": "bad"}), "delivery")
    assert set(exc.value.field_errors) == {"cf_delivery_day"}


def test_value_change_is_a_ticket_event_and_a_versioned_edit(db, fields, make_ticket, agent):
    ticket = make_ticket(category="delivery")
    version = ticket.version
    actor = Actor.for_user(agent)
    changed = cf.update_ticket_values(db.session, ticket.id, {"lot_number": "AB1", "delivery_day": "2026-04-01",
                                                              "pref": "tokyo"}, actor, expected_version=version)
    assert set(changed) == {"lot_number", "delivery_day", "pref"}
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.version > version
    cf.update_ticket_values(db.session, ticket.id, {"pref": "osaka", "lot_number": "AB1"}, actor)
    events = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.kind == "custom_field")
                                .order_by(TicketEvent.id)).all()
    assert [(e.detail["key"], e.before, e.after) for e in events] == [
        ("lot_number", None, "AB1"), ("delivery_day", None, "2026-04-01"), ("pref", None, "tokyo"),
        ("pref", "tokyo", "osaka")]
    assert cf.describe_event(db.session, events[-1], "ja") == "都道府県: 東京都 → 大阪府"
    assert cf.describe_event(db.session, events[-1], "en") == "Prefecture: Tokyo → Osaka"
    from helpdesk.tickets.service import VersionConflict

    with pytest.raises(VersionConflict):
        cf.update_ticket_values(db.session, ticket.id, {"pref": "tokyo"}, actor, expected_version=version)
    with pytest.raises(cf.CustomFieldError) as exc:
        cf.update_ticket_values(db.session, ticket.id, {"nope": "1", "doses": "x"}, actor)
    assert set(exc.value.field_errors) == {"cf_nope"}


def test_admin_page_adds_edits_and_deactivates(db, client, login, admin, agent):
    login(agent)
    assert client.get("/admin/custom-fields").status_code == 403
    client.post("/logout")
    login(admin)
    page = client.get("/admin/custom-fields")
    assert page.status_code == 200 and "追加項目" in page.get_data(as_text=True)
    bad = client.post("/admin/custom-fields", data={"key": "画面", "label_ja": "", "type": "choice", "choices": ""})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "キーは英小文字で始まる" in html and "表示名（日本語）を入力してください。" in html
    assert "選択肢を1行に1つ入力してください。" in html
    ok = client.post("/admin/custom-fields", data={"key": "screen_id", "label_ja": "画面ID", "label_en": "Screen ID",
                                                   "type": "text", "category": "system_error", "position": "3"})
    assert ok.status_code == 302
    field = cf.field_by_key(db.session, "screen_id")
    assert field.category.code == "system_error" and field.position == 3
    edit = client.post(f"/admin/custom-fields/{field.id}", data={"label_ja": "画面番号", "label_en": "Screen ID",
                                                                 "category": "", "position": "3"})
    assert edit.status_code == 302
    db.session.expire_all()
    field = db.session.get(cf.CustomField, field.id)
    assert field.label_ja == "画面番号" and not field.active and field.category_id is None and field.type == "text"
    actions = [r.action for r in db.session.scalars(select(AuditLog).where(AuditLog.object_type == "custom_field")
                                                    .order_by(AuditLog.id))]
    assert actions == ["custom_field.created", "custom_field.deactivated"]


def test_intake_checks_and_stores_values(db, client, login, agent, fields, make_user, make_org):
    caller = make_user(org=make_org())
    login(agent)
    page = client.get("/agent/intake").get_data(as_text=True)
    assert 'name="cf_lot_number"' in page and 'data-cf-category="delivery"' in page
    form = {"caller_id": str(caller.id), "subject": "ロットの確認", "description": "納品されたロットについて",
            "category": "delivery", "priority": "P3", "nonce": "n" * 30, "cf_doses": "abc",
            "cf_delivery_day": "2026-04-01"}
    refused = client.post("/agent/intake", data=form)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "「ロット番号」を入力してください。" in html and "「回数」は数字で入力してください" in html
    assert 'value="2026-04-01"' in html  # what was typed comes back
    assert db.session.scalar(select(Ticket).where(Ticket.subject == "ロットの確認")) is None
    form.update({"cf_lot_number": "ＡＢ－１", "cf_doses": "2", "cf_urgent": "1", "cf_pref": "tokyo"})
    assert client.post("/agent/intake", data=form).status_code == 302
    ticket = db.session.scalar(select(Ticket).where(Ticket.subject == "ロットの確認"))
    assert cf.values_of(db.session, [ticket.id])[ticket.id] == {
        "lot_number": "AB-1", "doses": 2.0, "delivery_day": dt.date(2026, 4, 1), "urgent": True, "pref": "tokyo"}


def test_portal_form_shows_and_checks_fields(db, client, login, fields, make_user, make_org):
    requester = make_user(org=make_org())
    login(requester)
    assert 'name="cf_lot_number"' in client.get("/portal/new").get_data(as_text=True)
    data = {"subject": "ロット番号の件", "description": "教えてください", "category": "", "nonce": "p" * 30}
    refused = client.post("/portal/new", data=data)
    assert refused.status_code == 400
    assert "「ロット番号」を入力してください。" in refused.get_data(as_text=True)
    data["cf_lot_number"] = "L-77"
    response = client.post("/portal/new", data=data)
    assert response.status_code == 302
    ticket = db.session.scalar(select(Ticket).where(Ticket.subject == "ロット番号の件"))
    assert cf.values_of(db.session, [ticket.id])[ticket.id] == {"lot_number": "L-77"}


def test_ticket_page_edit_records_events(db, client, login, agent, fields, make_ticket):
    ticket = make_ticket(category="delivery")
    version = ticket.version
    login(agent)
    page = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert 'id="custom-fields"' in page and 'name="cf_delivery_day"' in page
    bad = client.post(f"/tickets/{ticket.ref}/custom-fields",
                      data={"version": str(ticket.version), "cf_lot_number": "", "cf_doses": "二"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "「ロット番号」を入力してください。" in html and "「回数」は数字で入力してください" in html
    ok = client.post(f"/tickets/{ticket.ref}/custom-fields",
                     data={"version": str(ticket.version), "cf_lot_number": "LOT9", "cf_doses": "3",
                           "cf_urgent": "1"})
    assert ok.status_code == 302
    page = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert "ロット番号: — → LOT9" in page and "至急: いいえ → はい" in page
    stale = client.post(f"/tickets/{ticket.ref}/custom-fields",
                        data={"version": str(version), "cf_lot_number": "LOT10"})
    assert stale.status_code == 409
    assert cf.values_of(db.session, [ticket.id])[ticket.id]["lot_number"] == "LOT9"


def test_queue_filter_and_csv_export(db, client, login, agent, fields, make_ticket):
    actor = Actor.for_user(agent)
    a, b, c = make_ticket(subject="A件"), make_ticket(subject="B件"), make_ticket(subject="C件")
    cf.update_ticket_values(db.session, a.id, {"lot_number": "AB1", "doses": "2", "urgent": True}, actor)
    cf.update_ticket_values(db.session, b.id, {"lot_number": "AB2", "doses": "2.0"}, actor)
    f = queue.parse_filters(MultiDict({"cf_doses": "2"}))
    assert {t.id for t in queue.query_tickets(db.session, agent, f).items} == {a.id, b.id}
    f = queue.parse_filters(MultiDict({"cf_lot_number": "ＡＢ１"}))  # full-width typed: NFKC like the values
    assert [t.id for t in queue.query_tickets(db.session, agent, f).items] == [a.id]
    f = queue.parse_filters(MultiDict({"cf_urgent": "0"}))
    assert {t.id for t in queue.query_tickets(db.session, agent, f).items} == {b.id, c.id}
    assert f.to_args() == [("cf_urgent", "0")]
    with pytest.raises(queue.FilterError) as exc:
        queue.parse_filters(MultiDict({"cf_doses": "many", "cf_unknown": "1"}))
    assert set(exc.value.field_errors) == {"cf_doses", "cf_unknown"}
    login(agent)
    page = client.get("/agent/queue", query_string={"cf_lot_number": "AB2"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and b.ref in html and a.ref not in html
    page = client.get("/agent/queue", query_string={"cf_doses": "many"})
    assert page.status_code == 200 and "「回数」は数字で入力してください" in page.get_data(as_text=True)
    export = client.get("/agent/queue/export.csv", query_string={"status": "active", "cf_doses": "2"})
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "チケット番号" and "ロット番号 (lot_number)" in rows[0] and "至急 (urgent)" in rows[0]
    by_ref = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert set(by_ref) == {a.ref, b.ref}
    assert by_ref[a.ref]["ロット番号 (lot_number)"] == "AB1" and by_ref[a.ref]["至急 (urgent)"] == "はい"
    assert by_ref[b.ref]["回数 (doses)"] == "2" and by_ref[b.ref]["至急 (urgent)"] == ""
    audit_row = db.session.scalar(select(AuditLog).where(AuditLog.action == "export.downloaded")
                                  .order_by(AuditLog.id.desc()))
    assert audit_row is not None and audit_row.object_type == "tickets"


def test_english_reader_gets_english_labels_and_messages(db, client, login, fields, make_user, make_org):
    requester = make_user(org=make_org())
    login(requester)
    client.post("/lang", data={"lang": "en"})
    import flask_babel

    flask_babel.refresh()  # the test's app context outlives requests: drop the locale cached in it
    page = client.get("/portal/new").get_data(as_text=True)
    assert "Lot number" in page and "Custom fields" in page
    refused = client.post("/portal/new", data={"subject": "Lot", "description": "Which lot?", "category": "",
                                               "nonce": "e" * 30, "cf_doses": "many"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Enter “Lot number”." in html and "Enter “Doses” as a number (e.g. 120 or 1.5)." in html


def test_portal_ticket_page_lists_the_values(db, client, login, fields, make_user, make_org, agent):
    from helpdesk.tickets import service

    requester = make_user(org=make_org())
    ticket = service.create_ticket(db.session, actor=Actor(requester.id, requester.email), subject="値の表示",
                                   requester_id=requester.id)
    cf.update_ticket_values(db.session, ticket.id, {"lot_number": "LX-9", "pref": "osaka", "urgent": True},
                            Actor.for_user(agent))
    login(requester)
    html = client.get(f"/portal/tickets/{ticket.ref}").get_data(as_text=True)
    assert "<dt>ロット番号</dt><dd>LX-9</dd>" in html and "<dt>都道府県</dt><dd>大阪府</dd>" in html
    assert "<dt>至急</dt><dd>はい</dd>" in html and "<dt>回数</dt>" not in html
