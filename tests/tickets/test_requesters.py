"""Issue 14.6: whom a ticket is for, and the update's version check, as services (no request context).

The API's create / update views only parse, call these and map the errors; here they run with a
session and values alone.
"""
from __future__ import annotations

import flask
import pytest

from helpdesk.audit import Actor
from helpdesk.tickets import requesters, service


@pytest.fixture(autouse=True)
def no_request():
    assert not flask.has_request_context()


def test_a_requester_files_for_themself(db, make_org, make_user):
    org = make_org()
    user = make_user(org=org)
    assert requesters.resolve_filer(db.session, user) == requesters.Filer(user.id, org.id)


def test_a_requester_may_not_name_anyone(db, make_org, make_user):
    user = make_user(org=make_org())
    with pytest.raises(requesters.StaffOnly) as caught:
        requesters.resolve_filer(db.session, user, requester_email="x@example.jp", organisation_code="C1",
                                 also_named=("channel",))
    assert caught.value.fields == ["requester_email", "organisation_code", "channel"]
    assert "担当者だけ" in str(caught.value)


def test_staff_name_the_requester_and_the_organisation_wins(db, make_org, make_user, agent):
    home, other = make_org(), make_org(code="C-OTHER")
    requester = make_user(org=home, email="req@example.jp")
    # By e-mail (any case): the requester and their organisation.
    assert requesters.resolve_filer(db.session, agent, requester_email="REQ@example.jp") == \
        requesters.Filer(requester.id, home.id)
    # A named organisation wins over the requester's.
    assert requesters.resolve_filer(db.session, agent, requester_email="req@example.jp",
                                    organisation_code="C-OTHER") == requesters.Filer(requester.id, other.id)
    # Nobody named: an anonymous ticket (not the agent's own).
    assert requesters.resolve_filer(db.session, agent) == requesters.Filer(None, None)


def test_unknown_names_are_all_reported(db, agent):
    with pytest.raises(requesters.UnknownReference) as caught:
        requesters.resolve_filer(db.session, agent, requester_email="ghost@example.jp", organisation_code="NOPE")
    exc = caught.value
    assert str(exc) == "指定された利用者または組織が見つかりません。"
    assert {k: [str(m) for m in v] for k, v in exc.field_errors.items()} == {
        "requester_email": ["利用者「ghost@example.jp」が見つかりません。"],
        "organisation_code": ["組織コード「NOPE」が見つかりません。"]}


def test_the_messages_follow_the_locale(app, db, agent):
    from flask_babel import force_locale

    with pytest.raises(requesters.UnknownReference) as caught:
        requesters.resolve_filer(db.session, agent, organisation_code="NOPE")
    with force_locale("en"):
        assert str(caught.value) == "The named user or organisation was not found."
        assert str(caught.value.field_errors["organisation_code"][0]) == 'Organisation code "NOPE" not found.'


def test_update_assigns_by_email_after_the_version_check(db, make_ticket, make_user, agent):
    ticket = make_ticket()
    actor = Actor(agent.id, agent.email)
    requester = make_user(email="not-staff@example.jp")
    # A stale version is refused first, even with an unknown assignee.
    with pytest.raises(service.VersionConflict) as conflict:
        service.update_fields(db.session, ticket.id, actor, expected_version=ticket.version + 1,
                              assignee_email="ghost@example.jp")
    assert conflict.value.ticket.id == ticket.id
    db.session.rollback()
    for email in ("ghost@example.jp", requester.email):
        with pytest.raises(requesters.UnknownReference) as caught:
            service.update_fields(db.session, ticket.id, actor, expected_version=ticket.version,
                                  assignee_email=email)
        assert [str(m) for m in caught.value.field_errors["assignee"]] == [
            f"担当者「{email}」が見つからないか、担当者ではありません。"]
        db.session.rollback()
    service.update_fields(db.session, ticket.id, actor, expected_version=ticket.version,
                          assignee_email=agent.email.upper())
    assert ticket.assignee_id == agent.id and ticket.status == "open"


def test_help_button_caller_known_unknown_or_refused(db, make_org, make_user, agent):
    clinic, other = make_org(code="HB-CLINIC"), make_org(code="HB-OTHER")
    nurse = make_user(org=clinic, email="nurse@clinic.example.jp")
    # Staff: a known login id (any case) brings its own organisation, whatever code was sent.
    assert requesters.resolve_caller(db.session, agent, login_id="Nurse@Clinic.example.jp",
                                     organisation_code="HB-OTHER") == (nurse, clinic)
    # An unknown login id with a known organisation: the organisation alone.
    assert requesters.resolve_caller(db.session, agent, login_id="new@clinic.example.jp",
                                     organisation_code="HB-OTHER") == (None, other)
    # Neither found: every input is named.
    with pytest.raises(requesters.UnknownReference) as caught:
        requesters.resolve_caller(db.session, agent, login_id="X@y.jp")
    assert {k: [str(m) for m in v] for k, v in caught.value.field_errors.items()} == {
        "organisation_code": ["ログインIDが登録されていないため、組織コードが必要です。"],
        "login_id": ["ログインID「x@y.jp」は登録されていません。"]}
    # A requester files as themself only.
    assert requesters.resolve_caller(db.session, nurse, login_id="NURSE@clinic.example.jp",
                                     organisation_code="HB-CLINIC") == (nurse, clinic)
    with pytest.raises(requesters.OnBehalfRefused) as refused:
        requesters.resolve_caller(db.session, nurse, login_id="someone@else.jp", organisation_code="HB-OTHER")
    assert refused.value.fields == ["login_id", "organisation_code"]
