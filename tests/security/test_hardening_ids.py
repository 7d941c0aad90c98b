"""Issue 13.3: an id past the integer range never reaches the database, in any route."""
from __future__ import annotations

import pytest
from sqlalchemy import event
from werkzeug.exceptions import NotFound

from helpdesk.extensions import db as _db
from helpdesk.routing import MAX_ID, IdConverter

HUGE = 9999999999
#: What an out-of-range id may answer: not found, or the usual refusals (method, role, sign-in).
ACCEPTABLE = {302, 401, 403, 404, 405}


def _int_rules(app):
    rules = []
    for rule in app.url_map.iter_rules():
        ints = [arg for arg, conv in rule._converters.items() if isinstance(conv, IdConverter)]
        if ints:
            rules.append((rule, ints))
    return rules


def _values(rule, huge: int) -> dict:
    values = {}
    for arg, conv in rule._converters.items():
        if isinstance(conv, IdConverter):
            values[arg] = huge
        elif arg == "fmt":
            values[arg] = "json"
        else:
            values[arg] = "x"
    return values


def test_every_integer_path_argument_uses_the_bounded_converter(app):
    """No `<int:…>` (or any other integer converter) escapes the bound: one converter for every id."""
    from werkzeug.routing.converters import NumberConverter

    loose = [f"{rule.endpoint} {rule.rule}" for rule in app.url_map.iter_rules()
             for conv in rule._converters.values()
             if isinstance(conv, NumberConverter) and not isinstance(conv, IdConverter)]
    assert loose == []
    assert len(_int_rules(app)) >= 19  # attachments, users, problems, macros, SLA, webhooks, outbox, tokens, …


def test_the_router_refuses_out_of_range_ids_without_calling_a_view(app):
    adapter = app.url_map.bind("localhost")
    for rule, _ints in _int_rules(app):
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        path = rule.build(_values(rule, HUGE), append_unknown=False)[1]
        with pytest.raises(NotFound):
            endpoint, _args = adapter.match(path, method=method)
            raise AssertionError(f"{path} matched {endpoint}")
        # The largest real id still routes to the view.
        ok = rule.build(_values(rule, MAX_ID), append_unknown=False)[1]
        assert adapter.match(ok, method=method)[0] == rule.endpoint
        zero = rule.build(_values(rule, 0), append_unknown=False)[1]
        with pytest.raises(NotFound):
            adapter.match(zero, method=method)


@pytest.mark.parametrize("huge", [HUGE, 2**31, 2**63, 10**30])
def test_every_route_with_an_id_answers_404_not_a_database_error(app, client, make_user, login, huge):
    admin = make_user(roles="admin supervisor agent specialist product_owner")
    login(admin)
    statements = []

    def count(*_args, **_kwargs):
        statements.append(1)

    engine = _db.engine
    hits = []
    for rule, _ints in _int_rules(app):
        path = rule.build(_values(rule, huge), append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            event.listen(engine, "before_cursor_execute", count)
            try:
                response = client.open(path, method=method, data={"next": "/"})
            finally:
                event.remove(engine, "before_cursor_execute", count)
            hits.append((method, path, response.status_code))
            # 404 from the router; 405 when a wider rule (e.g. /manuals/<role>/<slug>) matches the long
            # path for another method. Never the view, never the database.
            assert response.status_code in (404, 405), (method, path, response.status_code)
    assert len(hits) >= 19
    # Signed-in requests load the user (session checks); nothing else may be queried for these URLs.
    assert len(statements) <= 2 * len(hits), statements


def test_api_routes_answer_a_json_404(app, client):
    response = client.get(f"/api/v1/users/{HUGE}")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
