"""Who a ticket is for and who works on it, when a caller names them by e-mail or organisation code.

Used by the API (a staff token files for a named requester / organisation, or assigns by e-mail).
Plain functions taking a session and values; refusals are `RequesterError`s (lazy messages) naming
the inputs (`requester_email`, `organisation_code`, `assignee`). This module imports nothing from
`tickets.service`, which resolves a named assignee with it (after its version check).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from helpdesk.accounts.models import Organisation, User


class RequesterError(Exception):
    """A refused naming of a requester, organisation or assignee; the message is shown to the caller."""


class StaffOnly(RequesterError):
    """Only staff may name who a ticket is for; `fields` are the inputs a requester named."""

    def __init__(self, fields: list[str]):
        super().__init__(_l("依頼者・組織・受付チャネルの指定はヘルプデスクの担当者だけが行えます。"))
        self.fields = fields


class UnknownReference(RequesterError):
    """A named user or organisation does not exist; `field_errors` maps the input to its messages."""

    def __init__(self, message, field_errors: dict[str, list]):
        super().__init__(message)
        self.field_errors = field_errors


@dataclass(frozen=True)
class Filer:
    """The requester and organisation a new ticket is filed for (None: not known / anonymous)."""

    requester_id: int | None
    organisation_id: int | None


def resolve_filer(session, user: User, *, requester_email: str | None = None,
                  organisation_code: str | None = None, also_named: tuple[str, ...] = ()) -> Filer:
    """Whom `user`'s new ticket is for.

    A requester files for themself and their organisation; naming anyone else (or anything in
    `also_named`, e.g. a channel) is StaffOnly. Staff file for the named requester (with that
    person's organisation) and/or the named organisation (which wins); nothing named = nobody.
    An unknown e-mail or code is UnknownReference, naming every unknown input at once.
    """
    named = [name for name, value in (("requester_email", requester_email), ("organisation_code", organisation_code))
             if value is not None] + list(also_named)
    if not user.is_staff:
        if named:
            raise StaffOnly(named)
        return Filer(user.id, user.organisation_id)
    requester_id = organisation_id = None
    errors: dict[str, list] = {}
    if requester_email:
        requester = session.scalar(select(User).where(User.email == requester_email.lower()))
        if requester is None:
            errors["requester_email"] = [_l("利用者「%(email)s」が見つかりません。", email=requester_email)]
        else:
            requester_id, organisation_id = requester.id, requester.organisation_id
    if organisation_code:
        organisation_id = session.scalar(select(Organisation.id).where(Organisation.code == organisation_code))
        if organisation_id is None:
            errors["organisation_code"] = [_l("組織コード「%(code)s」が見つかりません。", code=organisation_code)]
    if errors:
        raise UnknownReference(_l("指定された利用者または組織が見つかりません。"), errors)
    return Filer(requester_id, organisation_id)


def staff_by_email(session, email: str) -> User:
    """The staff member with login id `email` (an assignee); UnknownReference otherwise."""
    user = session.scalar(select(User).where(User.email == email.lower()))
    if user is None or not user.is_staff:
        raise UnknownReference(_l("担当者に指定できるのはヘルプデスクの担当者だけです。"),
                               {"assignee": [_l("担当者「%(email)s」が見つからないか、担当者ではありません。",
                                                email=email)]})
    return user


class OnBehalfRefused(RequesterError):
    """A requester named another login id or organisation than their own; `fields` are those inputs."""

    def __init__(self, fields: list[str]):
        super().__init__(_l("他の利用者・組織の代わりには送信できません。"))
        self.fields = fields


def resolve_caller(session, user: User, *, login_id: str | None = None,
                   organisation_code: str | None = None) -> tuple[User | None, Organisation | None]:
    """Who pressed the supported system's Help button: (requester, organisation).

    Staff (an integration account) file for anyone: the user with `login_id` (case-insensitive) and
    their organisation, else the organisation with `organisation_code` alone (an unknown caller);
    UnknownReference when neither is found. A requester files only as themself (OnBehalfRefused
    when naming another login id or organisation).
    """
    login_id = login_id.lower() if login_id else None
    if not user.is_staff:
        own_code = user.organisation.code if user.organisation else None
        named = [name for name, given, own in (("login_id", login_id, user.email),
                                                ("organisation_code", organisation_code, own_code))
                 if given and given != own]
        if named:
            raise OnBehalfRefused(named)
        return user, user.organisation
    requester = session.scalar(select(User).where(User.email == login_id)) if login_id else None
    org = None
    if organisation_code:
        org = session.scalar(select(Organisation).where(Organisation.code == organisation_code))
    if requester is not None and requester.organisation is not None:
        org = requester.organisation
    if requester is None and org is None:
        errors: dict[str, list] = {"organisation_code": [
            _l("組織コード「%(code)s」が見つかりません。", code=organisation_code) if organisation_code
            else _l("ログインIDが登録されていないため、組織コードが必要です。")]}
        if login_id:
            errors["login_id"] = [_l("ログインID「%(login_id)s」は登録されていません。", login_id=login_id)]
        raise UnknownReference(_l("依頼者を特定できません。ログインIDか組織コードを確認してください。"), errors)
    return requester, org
