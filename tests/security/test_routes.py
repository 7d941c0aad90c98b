"""Every endpoint declares who may open it, and no GET route changes anything."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from helpdesk.extensions import db as _db

#: Endpoints served by Flask itself (the app's and blueprints' static files).
class _Framework:
    def __contains__(self, endpoint: str) -> bool:
        return endpoint == "static" or endpoint.endswith(".static")


FRAMEWORK = _Framework()


def _view_flags(app, endpoint):
    view = app.view_functions[endpoint]
    if getattr(view, "api_token_auth", False):  # JSON API: bearer token with a scope, checked per operation
        return False, ("api:" + getattr(view, "api_scope", "read"),)
    return getattr(view, "public", False), getattr(view, "required_roles", None)


def test_every_endpoint_has_a_role_decorator_or_is_public(app):
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FRAMEWORK:
            continue
        is_public, roles = _view_flags(app, rule.endpoint)
        if not is_public and not roles and roles != ():
            missing.append(f"{rule.endpoint} {rule.rule}")
    assert missing == [], "views without @public or a roles decorator:\n" + "\n".join(missing)


def test_the_coverage_check_can_fail(app):
    """The check above looks at real attributes: an undecorated function has neither."""
    def bare():
        return "x"

    assert getattr(bare, "public", False) is False and getattr(bare, "required_roles", None) is None
    assert _view_flags(app, "accounts.activation")[1] == ("supervisor", "admin")


#: Words in an endpoint name that mean "this changes something".
STATE_CHANGING = re.compile(r"(^|[._])(delete|remove|logout|unlock|disable|enable|reset_link|send|merge|assign|"
                            r"escalate|close|update|create|import|rate|link|unlink|bulk|save|set)(_|$)")


def test_no_state_changing_endpoint_accepts_get(app):
    offenders = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FRAMEWORK or "GET" not in rule.methods:
            continue
        name = rule.endpoint.split(".", 1)[-1]
        if name.endswith("_preview"):  # shows what an action would do (e.g. merge_preview); changes nothing
            continue
        if STATE_CHANGING.search(name) and "POST" not in rule.methods:
            offenders.append(f"{rule.endpoint} {rule.rule}")
    assert offenders == [], offenders


def _fill(rule, ticket_ref: str, user_id: int) -> str | None:
    """A URL for the rule with sample values (existing objects where we have them)."""
    values = {}
    for arg in rule.arguments:
        conv = rule._converters.get(arg)
        kind = type(conv).__name__ if conv else ""
        if arg in ("ref", "ticket_ref"):
            values[arg] = ticket_ref
        elif "Integer" in kind:
            values[arg] = user_id if "user" in arg else 1
        elif arg == "role":
            values[arg] = "common"
        elif arg == "lang":
            values[arg] = "ja"
        elif "Path" in kind:
            values[arg] = "css/app.css"
        else:
            values[arg] = "first-login"
    try:
        return rule.build(values, append_unknown=False)[1]
    except Exception:
        return None


#: Tables that record that something was read (page-view analytics), not a change of state a forged
#: link could cause: a GET may append to them.
READ_LOG_TABLES = {"article_views", "ticket_seen", "kb_searches"}
#: Audit rows that record a read (issue 13.5: views of personal data, denied access, exports), not a change.
READ_AUDIT_ACTIONS = ("access.denied", "export.downloaded")


def _snapshot(session) -> dict[str, list]:
    session.expire_all()
    state = {}
    for table in _db.metadata.sorted_tables:
        if table.name in READ_LOG_TABLES:
            continue
        query = select(table)
        if table.name == "audit_log":
            query = query.where(~table.c.action.like("%.viewed"), table.c.action.not_in(READ_AUDIT_ACTIONS))
        rows = session.execute(query).all()
        state[table.name] = sorted(repr(tuple(r)) for r in rows)
    return state


@pytest.mark.parametrize("roles", ["admin supervisor agent", "requester"])
def test_every_get_route_leaves_the_database_unchanged(app, client, db, make_user, make_org, make_ticket, login,
                                                       roles):
    org = make_org(kind="municipality", code="131016")
    user = make_user(roles=roles, org=org if roles == "requester" else None)
    ticket = make_ticket(requester=user if roles == "requester" else None)
    login(user)
    client.get("/")  # first request after login may settle the session
    before = _snapshot(db.session)
    visited = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FRAMEWORK or "GET" not in rule.methods:
            continue
        url = _fill(rule, ticket.ref, user.id)
        if url is None:
            continue
        response = client.get(url)
        visited.append((url, response.status_code))
        assert response.status_code < 500, (url, response.status_code)
        after = _snapshot(db.session)
        changed = [name for name in after if after[name] != before[name]]
        assert not changed, f"GET {url} changed {changed}"
    assert len(visited) > 20


def test_logout_is_post_only(client, make_user, login):
    login(make_user())
    assert client.get("/logout").status_code == 405
    assert client.get("/accounts/users/1/unlock").status_code == 405


def test_sqlite_or_postgres_reachable(db):
    assert db.session.execute(text("SELECT 1")).scalar() == 1
