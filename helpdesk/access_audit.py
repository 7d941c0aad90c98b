"""The audit trail of reads: refused access, views of personal data, exports.

Changes are audited by the services that make them. Reads leave no row there, so this one
`after_request` hook records, from the route that answered:

- `access.denied` — a signed-in user (or API token) got 403/404 from a route addressing an object
  (a ticket, a user, a problem, an attachment …): someone else's ticket, or probing for ids;
- `<kind>.viewed` — a page showing a person's data answered 200: the ticket pages (agent and portal)
  and the account page;
- `export.downloaded` — a file export answered 200: problem CSVs, the evidence pack, the monthly
  report CSV, the insights CSVs (the outreach CSV is audited by its service, with its filters).

Each row carries the actor (id and login), their IP, the object (type and id) and the result
(HTTP status) in `detail`, with the route's name. Only URL arguments that are object identifiers
are kept; any other argument (a reset token, a search text) is never written.
"""
from __future__ import annotations

import logging
import re

from flask import Flask, g, request
from flask_login import current_user

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.tickets.models import parse_ref

logger = logging.getLogger(__name__)

#: endpoint -> (object type, URL argument naming the object)
VIEWS = {
    "tickets.detail": ("ticket", "ref"),
    "tickets.portal_detail": ("ticket", "ref"),
    "accounts.user_detail": ("user", "user_id"),
}
EXPORTS = {
    "insights.problem_export": ("problem", "problem_id"),
    "insights.evidence": ("problem", "problem_id"),
    "insights.export": ("insights", "name"),
    "reports.monthly_csv": ("report", None),
    "tickets.queue_export": ("tickets", None),
}
#: URL arguments that may be written to the trail, each with the only shape it may have: identifiers
#: and names of things, never free values (a token in the same place is left out).
_SAFE_ARGS = {
    "ref": re.compile(r"(?i)HD-\d{1,12}"),
    "name": re.compile(r"[a-z0-9_-]{1,40}"),
    "fmt": re.compile(r"[a-z0-9]{1,10}"),
    "role": re.compile(r"[a-z_]{1,20}"),
    "kind": re.compile(r"[a-z_]{1,20}"),
    "slug": re.compile(r"[a-z0-9-]{1,80}"),
}
_ID_VALUE = re.compile(r"\d{1,20}")


def _actor() -> Actor | None:
    user = getattr(g, "api_user", None)
    if user is None:
        try:
            user = current_user._get_current_object() if current_user.is_authenticated else None
        except Exception:  # no user loader in this context
            user = None
    if user is None:
        return None
    return Actor(user.id, user.email, client_ip())


def _safe_args(view_args: dict | None) -> dict:
    out = {}
    for key, value in (view_args or {}).items():
        value = str(value)
        shape = _ID_VALUE if key.endswith("_id") else _SAFE_ARGS.get(key)
        if shape is not None and shape.fullmatch(value):
            out[key] = value
        else:
            out[key] = "…"  # not an identifier: left out
    return out


def _object(kind: str, arg: str | None, args: dict) -> tuple[str, str | None]:
    value = args.get(arg) if arg else None
    if kind == "ticket" and value:
        ticket_id = parse_ref(value)
        return "ticket", str(ticket_id) if ticket_id is not None else value
    return kind, value


def _denied_object(endpoint: str, args: dict) -> tuple[str, str | None]:
    if "ref" in args:
        return _object("ticket", "ref", args) if args["ref"] != "…" else ("ticket", None)
    for key, value in args.items():
        if key.endswith("_id") and value != "…":
            return key[:-3], value
    return endpoint.partition(".")[0] or "route", None


def _record(response):
    rule = request.url_rule
    if rule is None or request.method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        return response
    endpoint, status = request.endpoint or "", response.status_code
    if status in (403, 404) and request.view_args:
        action = "access.denied"
        args = _safe_args(request.view_args)
        object_type, object_id = _denied_object(endpoint, args)
    elif status == 200 and request.method == "GET" and endpoint in VIEWS:
        args = _safe_args(request.view_args)
        object_type, object_id = _object(*VIEWS[endpoint], args)
        action = f"{object_type}.viewed"
    elif status == 200 and request.method == "GET" and (
            endpoint in EXPORTS or (endpoint == "reports.monthly" and request.args.get("format") == "csv")):
        args = _safe_args(request.view_args)
        object_type, object_id = _object(*EXPORTS.get(endpoint, ("report", None)), args)
        if object_type == "report":
            month = request.args.get("month", "")
            args["month"] = month if re.fullmatch(r"\d{4}-\d{2}", month) else ("…" if month else "")
            object_id = args["month"] or None
        action = "export.downloaded"
    else:
        return response
    actor = _actor()
    if actor is None:
        return response
    detail = {"endpoint": endpoint, "method": request.method, "status": status, "args": args,
              "result": "denied" if action == "access.denied" else "ok"}
    try:
        audit.record(db.session, actor, action, object_type, object_id, detail)
        db.session.commit()
    except Exception as exc:  # the answer stands; a lost audit row is logged
        db.session.rollback()
        logger.warning("audit of %s %s failed: %s", action, endpoint, type(exc).__name__)
    return response


def init_app(app: Flask) -> None:
    app.after_request(_record)
