"""A programming error is a 500 with a reference id, only an outage is the 503 page (issue 19)."""
from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from helpdesk import create_app
from helpdesk.extensions import db as _db
from tests.conftest import TEST_DB, base_config


@pytest.fixture
def error_app(app):
    """A separate app (own routes) on the same database as the suite."""
    app2 = create_app(base_config(PROPAGATE_EXCEPTIONS=False))

    class SignedIn:  # what Flask-Login keeps for a signed-in agent (the route runs with one)
        is_authenticated, is_active, is_anonymous = True, True, False

        def get_id(self):
            return "4242"

    @app2.before_request
    def _signed_in():
        from flask import g

        g._login_user = SignedIn()

    @app2.get("/_test/bad-sql")
    def bad_sql():
        _db.session.execute(text("SELECT no_such_column_xyz FROM tickets"))
        return "unreachable"

    @app2.get("/_test/bad-value")
    def bad_value():
        if TEST_DB.startswith("postgresql"):
            _db.session.execute(text("SELECT CAST('not a number' AS integer)"))
        raise ValueError("a bug in our code")

    @app2.get("/_test/outage")
    def outage():
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"),
                               connection_invalidated=True)

    yield app2
    with app2.app_context():
        _db.engine.dispose()


def test_programming_error_is_500_with_reference_logged(error_app, caplog):
    client = error_app.test_client()
    caplog.set_level(logging.ERROR, logger="helpdesk.security")
    for path in ("/_test/bad-sql", "/_test/bad-value"):
        caplog.clear()
        response = client.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 500, path
        assert "一時的に利用できません" not in html
        ref = re.search(r"<code>([0-9a-f]{12})</code>", html).group(1)
        records = [r for r in caplog.records if ref in r.getMessage()]
        assert len(records) == 1, path
        message = records[0].getMessage()
        assert "user_id=4242" in message and "route=" in message
        assert records[0].exc_info is not None  # the full traceback is in the log
        assert "Traceback" not in html


def test_outage_is_503_without_reference(error_app):
    response = error_app.test_client().get("/_test/outage")
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "一時的に利用できません" in html and "参照番号" not in html


def test_api_programming_error_is_problem_document_with_reference(error_app):
    response = error_app.test_client().get("/_test/bad-sql", headers={"Accept": "application/json"})
    assert response.status_code == 500
    body = response.get_json()
    assert body["status"] == 500 and re.fullmatch(r"[0-9a-f]{12}", body["reference"])
    assert body["reference"] in body["detail"]


@pytest.mark.parametrize("message, unavailable", [
    ("database is locked", True), ("unable to open database file", True),
    ("no such column: x", False), ('near "SELEC": syntax error', False)])
def test_sqlite_operational_errors_classified(message, unavailable):
    import sqlite3

    from helpdesk.security import database_unavailable

    exc = OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))
    assert database_unavailable(exc) is unavailable
