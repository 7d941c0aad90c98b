"""The served OpenAPI 3.1 document, its docs page, and schemathesis property-based runs against it.

Every operation gets 20 generated requests (deterministic: hypothesis derandomize) sent with a staff
token; the run fails on any 5xx, any response not matching its documented schema, an undocumented
status code or content type.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from helpdesk.api import schemas as S
from helpdesk.api.openapi import build_document


def test_openapi_document_served(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/v1/tickets", "/api/v1/tickets/{ref}", "/api/v1/help-requests"} <= set(doc["paths"])
    # The request schemas in the document are the validating pydantic models.
    assert doc["components"]["schemas"]["TicketCreate"] == S.TicketCreate.model_json_schema(
        ref_template="#/components/schemas/{model}")
    assert doc["components"]["schemas"]["TicketCreate"]["additionalProperties"] is False
    assert doc["paths"]["/api/v1/tickets"]["post"]["security"] == [{"bearerAuth": ["tickets:write"]}]
    assert doc == build_document("/")


def test_openapi_document_is_valid_openapi_31(client):
    from jsonschema_rs import validator_for  # shipped with schemathesis

    doc = client.get("/api/v1/openapi.json").get_json()
    # Every component schema is itself a valid JSON Schema 2020-12 document.
    for name in doc["components"]["schemas"]:
        validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema",
                       "components": doc["components"], "$ref": f"#/components/schemas/{name}"})
    schemathesis.openapi.from_dict(doc)  # schemathesis parses it as OpenAPI 3.1


def test_docs_page_has_no_cdn_or_inline_script(client):
    r = client.get("/api/v1/docs")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "POST /api/v1/help-requests" in html
    assert "<script>" not in html and "cdn" not in html.lower() and " onclick=" not in html


@pytest.fixture
def staff_token(make_token, make_user, make_org, make_ticket):
    org = make_org(kind="clinic", code="1310160001")
    requester = make_user(org=org, email="clinic@chiyoda-naika.example.jp", phone="03-0000-0001")
    make_ticket(org=org, requester=requester)
    agent = make_user(roles="agent admin", email="schemathesis-agent@helpdesk.example.jp")
    return make_token(agent, scopes=("admin",))


# The document as served (test_openapi_document_served checks the served one is this one).
schema = schemathesis.openapi.from_dict(build_document("/"))


@schema.parametrize()
@settings(max_examples=20, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, app, staff_token):
    response = case.call(app=app, headers={"Authorization": f"Bearer {staff_token}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance,
                                             status_code_conformance, content_type_conformance])
