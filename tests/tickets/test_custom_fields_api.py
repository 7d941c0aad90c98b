"""Custom fields in the JSON API and its OpenAPI document (issue 17.2)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from helpdesk.api import service as api_service
from helpdesk.audit import Actor
from helpdesk.tickets import custom_fields as cf
from helpdesk.tickets.models import Ticket, TicketEvent


@pytest.fixture
def fields(db, make_user):
    actor = Actor.for_user(make_user(roles="admin"))
    cf.create_field(db.session, actor, key="lot_number", label_ja="ロット番号", label_en="Lot number", type="text",
                    required=True)
    cf.create_field(db.session, actor, key="doses", label_ja="回数", label_en="Doses", type="number")
    cf.create_field(db.session, actor, key="delivery_day", label_ja="納品日", label_en="Delivery day", type="date",
                    category="delivery")
    cf.create_field(db.session, actor, key="pref", label_ja="都道府県", label_en="Prefecture", type="choice",
                    choices="tokyo | 東京都 | Tokyo\nosaka | 大阪府 | Osaka")
    cf.create_field(db.session, actor, key="urgent", label_ja="至急", label_en="Urgent", type="checkbox")


@pytest.fixture
def call(db, client, agent):
    token = api_service.create_token(db.session, name="cf-api", user_email=agent.email,
                                     scopes=["read", "tickets:write"], actor=Actor.system("test")).plaintext

    def do(method, path, body=None):
        return client.open("/api/v1" + path, method=method, headers={"Authorization": f"Bearer {token}"},
                           data=None if body is None else json.dumps(body, ensure_ascii=False),
                           content_type="application/json")

    return do


def test_create_read_update_with_custom_fields(db, call, fields, make_user, make_org):
    requester = make_user(org=make_org())
    bad = call("POST", "/tickets", {"subject": "ロット", "requester_email": requester.email, "category": "login",
                                    "custom_fields": {"doses": "多い", "delivery_day": "2026-04-01", "zzz": 1}})
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    errors = bad.get_json()["errors"]
    assert errors["custom_fields.lot_number"] == ["「ロット番号」を入力してください。"]
    assert "数字で入力してください" in errors["custom_fields.doses"][0]
    assert set(errors) == {"custom_fields.lot_number", "custom_fields.doses", "custom_fields.delivery_day",
                           "custom_fields.zzz"}  # the delivery-only field is not for a login ticket
    assert db.session.scalar(select(Ticket).where(Ticket.subject == "ロット")) is None
    created = call("POST", "/tickets", {"subject": "ロット", "requester_email": requester.email,
                                        "category": "delivery",
                                        "custom_fields": {"lot_number": "AB-1", "doses": 2, "pref": "大阪府",
                                                          "delivery_day": "2026-04-01", "urgent": True}})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["custom_fields"] == {"lot_number": "AB-1", "doses": 2, "pref": "osaka",
                                     "delivery_day": "2026-04-01", "urgent": True}
    ref = body["ref"]
    updated = call("PATCH", f"/tickets/{ref}", {"custom_fields": {"doses": 2.5, "urgent": False, "pref": None},
                                                "version": body["version"]})
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["custom_fields"] == {"lot_number": "AB-1", "doses": 2.5, "pref": None,
                                                   "delivery_day": "2026-04-01", "urgent": False}
    ticket_id = db.session.scalar(select(Ticket.id).where(Ticket.subject == "ロット"))
    kinds = db.session.scalars(select(TicketEvent.detail).where(TicketEvent.ticket_id == ticket_id,
                                                                TicketEvent.kind == "custom_field")).all()
    assert sorted(d["key"] for d in kinds) == ["doses", "pref", "urgent"]
    refused = call("PATCH", f"/tickets/{ref}", {"custom_fields": {"lot_number": "", "delivery_day": "4月1日"}})
    assert refused.status_code == 400
    assert set(refused.get_json()["errors"]) == {"custom_fields.lot_number", "custom_fields.delivery_day"}
    assert call("GET", f"/tickets/{ref}").get_json()["custom_fields"]["lot_number"] == "AB-1"
    listed = call("GET", "/tickets?cf_pref=osaka&cf_doses=2.5").get_json()["items"]
    assert [t["ref"] for t in listed] == []  # pref was cleared
    listed = call("GET", "/tickets?cf_doses=2.5&cf_lot_number=AB-1").get_json()["items"]
    assert [t["ref"] for t in listed] == [ref]
    bad_filter = call("GET", "/tickets?cf_doses=abc")
    assert bad_filter.status_code == 400 and "cf_doses" in bad_filter.get_json()["errors"]


def test_openapi_document_lists_the_defined_fields(db, client, fields, make_user):
    doc = client.get("/api/v1/openapi.json").get_json()
    schema = doc["components"]["schemas"]["CustomFields"]
    assert set(schema["properties"]) == {"lot_number", "doses", "delivery_day", "pref", "urgent"}
    assert schema["properties"]["pref"]["anyOf"][0]["enum"] == ["tokyo", "osaka"]
    assert schema["properties"]["urgent"]["type"] == "boolean"
    assert "category `delivery`" in schema["properties"]["delivery_day"]["description"]
    assert schema["x-required-on-create"] == ["lot_number"]
    assert "CustomFields" in doc["components"]["schemas"]["TicketCreate"]["properties"]["custom_fields"]["description"]
    assert "cf_<key>=value" in doc["paths"]["/api/v1/tickets"]["get"]["description"]
    # A new definition shows at once (the cached document is keyed by the definitions).
    cf.create_field(db.session, Actor.for_user(make_user(roles="admin")), key="screen_id", label_ja="画面ID",
                    type="text")
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "screen_id" in doc["components"]["schemas"]["CustomFields"]["properties"]
