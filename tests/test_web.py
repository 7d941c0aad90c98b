"""Issue 14.6: one decorator answers a service refusal in a POST view (helpdesk.web.shows_refusals)."""
from __future__ import annotations

import pytest
from flask import get_flashed_messages
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField

from helpdesk.web import shows_refusals


class Refused(Exception):
    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


class NoteForm(FlaskForm):
    title = StringField()
    body = StringField()


def _pending_org(db):
    from helpdesk.accounts.models import Organisation

    org = Organisation(code="WEB-T1", name="途中の組織", kind="clinic", prefecture="東京都")
    db.session.add(org)
    db.session.flush()
    return org


def test_a_refusal_is_flashed_and_redirected_after_a_rollback(app, db):
    from helpdesk.accounts.models import Organisation

    @shows_refusals(Refused, redirect_to=lambda item_id: f"/items/{item_id}")
    def view(item_id):
        _pending_org(db)
        raise Refused(_l("本文を入力してください。"))

    with app.test_request_context("/items/7", method="POST"):
        response = view(item_id=7)
        assert response.status_code == 302 and response.location == "/items/7"
        assert get_flashed_messages(with_categories=True) == [("error", "本文を入力してください。")]
    assert db.session.query(Organisation).filter_by(code="WEB-T1").count() == 0  # rolled back


def test_a_refusal_goes_next_to_the_named_field_or_the_default_one(app, db):
    seen = []

    def page(form, item_id, field=None):
        seen.append(form)
        return f"page {item_id}", 400

    @shows_refusals(Refused, form=NoteForm, field="title", page=page)
    def view(item_id, field=None):
        raise Refused("だめです", field)

    with app.test_request_context("/items/3", method="POST", data={"title": "件名", "body": "本文"}):
        assert view(item_id=3) == ("page 3", 400)
        assert view(item_id=3, field="body") == ("page 3", 400)
        assert view(item_id=3, field="no_such_field") == ("page 3", 400)
    default, named, unknown = seen
    assert default.title.errors == ["だめです"] and not default.body.errors
    assert default.title.data == "件名"  # what was posted is shown again
    assert named.body.errors == ["だめです"] and not named.title.errors
    assert unknown.title.errors == ["だめです"]


def test_other_errors_and_successes_pass_through(app, db):
    @shows_refusals(Refused, redirect_to=lambda: "/")
    def view(fail):
        if fail:
            raise KeyError("x")
        return "ok"

    with app.test_request_context("/", method="POST"):
        assert view(fail=False) == "ok"
        with pytest.raises(KeyError):
            view(fail=True)


def test_the_declaration_is_checked():
    with pytest.raises(TypeError):
        shows_refusals(Refused)
    with pytest.raises(TypeError):
        shows_refusals(Refused, redirect_to=lambda: "/", page=lambda form: "")
    with pytest.raises(TypeError):
        shows_refusals(Refused, page=lambda form: "")
