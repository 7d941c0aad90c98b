"""The OpenAPI document and its human-readable page (server-rendered, no CDN, no script)."""
from __future__ import annotations

import json

from flask import jsonify, render_template

from helpdesk.api import bp
from helpdesk.api.openapi import build_document
from helpdesk.auth import public
from helpdesk.routing import base_url


def _server_url() -> str:
    return base_url() + "/"  # BASE_URL, never the request's Host


@bp.get("/openapi.json")
@public
def openapi_json():
    response = jsonify(build_document("/"))
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/docs")
@public
def docs():
    spec = build_document("/")
    schemas = spec["components"]["schemas"]
    groups: dict[str, list[dict]] = {t["name"]: [] for t in spec["tags"]}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body_ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                        .get("schema", {}).get("$ref"))
            responses = []
            for status, resp in op["responses"].items():
                ref = next(iter(resp.get("content", {}).values()), {}).get("schema", {}).get("$ref")
                responses.append({"status": status, "description": resp["description"],
                                  "schema": ref.rsplit("/", 1)[-1] if ref else None})
            groups.setdefault(op["tags"][0], []).append({
                "id": op["operationId"], "method": method.upper(), "path": path, "summary": op["summary"],
                "description": op.get("description", ""), "params": op.get("parameters", []),
                "scope": op["security"][0]["bearerAuth"][0],
                "body": body_ref.rsplit("/", 1)[-1] if body_ref else None, "responses": responses})
    used = sorted({name for ops in groups.values() for op in ops
                   for name in [op["body"]] + [r["schema"] for r in op["responses"]] if name})
    pretty = {name: json.dumps(schemas[name], ensure_ascii=False, indent=2) for name in used if name in schemas}
    return render_template("api/docs.html", spec=spec, groups=groups, pretty=pretty, tags=spec["tags"],
                           server=_server_url())
