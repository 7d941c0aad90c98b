"""The OpenAPI 3.1 document, assembled from the registered operations and their pydantic models.

Pydantic v2 emits JSON Schema 2020-12, the dialect OpenAPI 3.1 uses, so the component schemas are the
exact schemas that validate the requests: one definition both validates and documents.
"""
from __future__ import annotations

import re
from functools import lru_cache

from pydantic.json_schema import models_json_schema

from helpdesk.api import insights_views, views  # noqa: F401  (their @operation calls fill OPERATIONS)
from helpdesk.api import schemas as S
from helpdesk.api.framework import OPERATIONS, Operation
from helpdesk.extensions import db
from helpdesk.tickets import custom_fields

REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Invalid JSON, wrong types, unknown fields or bad parameters (field errors in `errors`)",
    401: "Missing, unknown, expired or revoked token",
    403: "The token lacks the scope, or its user may not do this",
    404: "Not found, or not visible to the token's user",
    409: "Version conflict (body `version`) or a refused status change",
    412: "If-Match does not match the current version",
    413: "Body larger than the limit",
    415: "Content-Type is not application/json",
    422: "Refused: unknown references, or an Idempotency-Key reused with another body",
    429: "Rate limit of the token exceeded",
}
TAGS = [
    {"name": "tickets", "description": "Tickets: create, read, list, update, reply"},
    {"name": "help", "description": "The supported system's Help button"},
    {"name": "organisations", "description": "Organisations and their users' activation"},
    {"name": "users", "description": "Users (CTI look-up by phone, e-mail)"},
    {"name": "articles", "description": "Manual articles: search, suggest, read"},
    {"name": "problems", "description": "Problems (backlog items) and their tickets"},
    {"name": "insights", "description": "Trends and recurring issues"},
]


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", "/api/v1" + rule)


def _models() -> list[type]:
    seen: dict[str, type] = {}
    for model in list(S.REQUEST_MODELS) + list(S.RESPONSE_MODELS):
        seen[model.__name__] = model
    for op in OPERATIONS:
        for model in [op.body] + [m for m, _ in op.responses.values()]:
            if model is not None:
                seen[model.__name__] = model
    return list(seen.values())


def _operation(op: Operation) -> dict:
    out: dict = {"operationId": op.endpoint, "summary": op.summary, "tags": [op.tag],
                 "security": [{"bearerAuth": [op.scope]}]}
    if op.description:
        out["description"] = op.description + f"\n\nRequired scope: `{op.scope}`."
    params = []
    for p in op.params:
        item = {"name": p.name, "in": p.location, "required": p.required or p.location == "path",
                "schema": p.schema}
        if p.description:
            item["description"] = p.description
        if p.explode is not None:
            item["style"], item["explode"] = "form", p.explode
        params.append(item)
    if op.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "description": "Retry-safe key: the same key and body return the first answer",
                       "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"}})
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format(model=op.body.__name__)}}}}
    responses: dict = {}
    for status, (model, text) in op.responses.items():
        entry: dict = {"description": text}
        if model is not None:
            entry["content"] = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
        responses[str(status)] = entry
    for status in sorted(set(op.errors)):
        responses[str(status)] = {"description": _ERROR_TEXT.get(status, "Error"), "content": {
            "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}}
    out["responses"] = responses
    return out


@lru_cache(maxsize=4)
def _cached(server_url: str, custom_fields_signature: tuple) -> dict:
    return _build(server_url)


def build_document(server_url: str = "/") -> dict:
    # Keyed by the custom field definitions too: an administrator's change shows on every process.
    return _cached(server_url, _custom_fields_signature())


def forget_cached() -> None:
    _cached.cache_clear()


def _custom_fields_signature() -> tuple:
    from flask import has_app_context

    if not has_app_context():  # built at import time (tools): the generic shape, no definitions
        return ("generic",)
    return tuple(tuple(row) for row in custom_fields.signature(db.session))


def _with_custom_fields(schemas: dict) -> dict:
    """The `CustomFields` component from the current definitions.

    The ticket models keep their own (validating) schema — a map of key to string/number/boolean/null;
    this component documents each defined key with its type, choices and labels, and the service checks
    the values against it (400 with a message per `custom_fields.<key>`).
    """
    from flask import has_app_context

    schemas["CustomFields"] = (custom_fields.openapi_schema(db.session) if has_app_context()
                               else custom_fields.openapi_schema(None))
    return schemas


def _build(server_url: str) -> dict:
    _, defs = models_json_schema([(m, "validation") for m in _models()], ref_template=REF)
    paths: dict = {}
    for op in OPERATIONS:
        paths.setdefault(_openapi_path(op.rule), {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "VDS Help Desk API",
            "version": "1.0.0",
            "description": (
                "JSON API of the VDS help desk. Authenticate with `Authorization: Bearer <token>` "
                "(tokens are issued by administrators at /admin/api-tokens). Every call is scoped like the "
                "web UI: a token acts as its bound user. Errors are RFC 9457 problem details "
                "(`application/problem+json`). Times are ISO 8601 with the Asia/Tokyo offset (+09:00). "
                "POST accepts `Idempotency-Key`. Webhook deliveries are signed: "
                "`X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of the raw body with the subscription secret>`."),
        },
        "servers": [{"url": server_url}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": _with_custom_fields(defs.get("$defs", {})),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "API token (hd_…), shown once at creation"}},
        },
    }
