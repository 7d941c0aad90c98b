"""Issue 14.5: service errors are shown in the reader's language.

Services raise errors carrying lazy gettext strings; the pages turn them into text with str(exc) in
the request, so an English session reads English (with labels, not codes) and a Japanese one reads
the Japanese source. CLI commands (no request) print Japanese.
"""
from __future__ import annotations

import ast
import html
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import flask_babel
import pytest
from babel.messages.pofile import read_po

from helpdesk.audit import Actor
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[1]
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")
_SHOWN = re.compile(r'<p class="(?:field-error" id="[\w-]+-error|flash flash--(?:error|warning))">(.*?)</p>', re.S)


def _messages(page: str) -> list[str]:
    """The error / warning messages on a page: field errors next to inputs and flashed messages."""
    return [html.unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in _SHOWN.findall(page)]


def _use(client, lang: str) -> None:
    client.post("/lang", data={"lang": lang})
    flask_babel.refresh()  # the test's app context outlives requests and keeps the locale cached in it


def _shown(page: str, lang: str, english: str, japanese: str) -> str:
    """Assert the message for `lang` is on the page (and, in English, that no shown message is Japanese)."""
    messages = _messages(page)
    expected = english if lang == "en" else japanese
    hits = [m for m in messages if expected in m]
    assert hits, (expected, messages)
    if lang == "en":
        assert not [m for m in messages if JAPANESE.search(m)], messages
        assert japanese not in page
    else:
        assert english not in page
    return hits[0]


LANGS = pytest.mark.parametrize("lang", ["en", "ja"])


# --- tickets ---------------------------------------------------------------------------------------

def _fields(ticket, **overrides):
    data = {"version": ticket.version, "priority": ticket.priority, "category": "", "assignee": "",
            "status": ticket.status}
    data.update(overrides)
    return data


@LANGS
def test_refused_status_change_on_the_ticket_page(db, client, login, agent, make_ticket, lang):
    from helpdesk.tickets import service

    ticket = make_ticket()
    service.change_status(db.session, ticket.id, "open", Actor.for_user(agent))
    login(agent)
    _use(client, lang)
    response = client.post(f"/tickets/{ticket.ref}/fields", data=_fields(ticket, status="closed"))
    assert response.status_code == 400
    message = _shown(response.get_data(as_text=True), lang,
                     'The status cannot be changed from "Open" to "Closed".',
                     "ステータスを「対応中」から「完了」には変更できません。")
    assert "open" not in message.replace("Open", "")  # a label, never the code


@LANGS
def test_refused_bulk_status_change_names_the_labels(db, client, login, agent, make_ticket, lang):
    from helpdesk.tickets import service

    ticket = make_ticket()
    service.change_status(db.session, ticket.id, "open", Actor.for_user(agent))
    login(agent)
    _use(client, lang)
    page = client.post("/agent/queue/bulk", data={"ids": [str(ticket.id)], "action": "status", "value": "closed"},
                       follow_redirects=True).get_data(as_text=True)
    _shown(page, lang, f'{ticket.ref} was not changed', f"{ticket.ref} は変更できませんでした")
    _shown(page, lang, '"Open" to "Closed"', "「対応中」から「完了」")


@LANGS
def test_stale_version_on_the_ticket_page(db, client, login, agent, make_ticket, lang):
    from helpdesk.tickets import service

    ticket = make_ticket()
    old_version = ticket.version
    service.update_fields(db.session, ticket.id, Actor.for_user(agent), priority="P2")
    login(agent)
    _use(client, lang)
    response = client.post(f"/tickets/{ticket.ref}/fields", data=_fields(ticket, version=old_version, priority="P1"))
    assert response.status_code == 409
    _shown(response.get_data(as_text=True), lang, "another agent updated this ticket",
           "他の担当者が更新しました")


def test_version_conflict_and_duplicate_messages_follow_the_locale(app, db, make_ticket):
    """The service's own texts (used by the API and the portal) render in the locale of the moment."""
    from helpdesk.tickets import service

    ticket = make_ticket()
    conflict, duplicate = service.VersionConflict(ticket), service.DuplicateSubmission(None)
    with app.test_request_context():
        with flask_babel.force_locale("en"):
            assert str(conflict) == "Another agent has updated this ticket. Check the latest version before saving."
            assert str(duplicate) == "This form has already been submitted."
        with flask_babel.force_locale("ja"):
            assert str(duplicate) == "このフォームは既に送信済みです。"


def _nonce(client) -> str:
    page = client.get("/portal/new").get_data(as_text=True)
    return re.search(r'name="nonce" type="hidden" value="([^"]+)"', page).group(1)


@LANGS
def test_duplicate_submission_on_the_portal(db, client, login, make_user, make_org, lang):
    login(make_user(org=make_org()))
    _use(client, lang)
    data = {"nonce": _nonce(client), "subject": "Double click", "description": "Sent twice by a double click"}
    assert client.post("/portal/new", data=data).status_code == 302
    page = client.post("/portal/new", data=data, follow_redirects=True).get_data(as_text=True)
    _shown(page, lang, "has already been received", "既に受け付けています")


@LANGS
def test_macro_error_on_the_macro_page(db, client, login, make_user, lang):
    login(make_user(roles="admin"))
    _use(client, lang)
    response = client.post("/agent/macros", data={"title": "Greeting", "body": "Dear {customer}", "set_status": "",
                                                  "set_category": "", "active": "y"})
    assert response.status_code == 400
    message = _shown(response.get_data(as_text=True), lang, "Unknown placeholders: {customer} (available: ",
                     "使えない差し込み項目があります: {customer}（使えるもの: ")
    assert "{requester_name}" in message


# --- SLA ------------------------------------------------------------------------------------------

@LANGS
def test_sla_policy_clash_on_the_policy_page(db, client, login, make_user, lang):
    from helpdesk.sla import service

    supervisor = make_user(roles="supervisor")
    service.save_policy(db.session, Actor.for_user(supervisor), priority="P2", first_response_minutes=60,
                        resolution_minutes=480)
    login(supervisor)
    _use(client, lang)
    response = client.post("/sla/policies", data={
        "priority": "P2", "role": "", "category": "", "at_risk_percent": "75", "first_response_hours": "2",
        "first_response_mins": "0", "resolution_hours": "8", "resolution_mins": "0", "next_update_hours": "",
        "next_update_mins": ""})
    assert response.status_code == 400
    _shown(response.get_data(as_text=True), lang, "A policy for the same priority and scope already exists.",
           "同じ優先度・対象のポリシーが既にあります。")


@LANGS
def test_ics_import_error_keeps_the_line_number(db, client, login, make_user, lang):
    login(make_user(roles="supervisor"))
    _use(client, lang)
    ics = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Closed\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    response = client.post("/sla/closed-days/import", data={"ics": (io.BytesIO(ics), "days.ics")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    _shown(response.get_data(as_text=True), lang, "Line 2: An event has no start date (DTSTART).",
           "2行目: 予定に開始日（DTSTART）がありません。")


# --- accounts -------------------------------------------------------------------------------------

@LANGS
def test_refused_user_edit_next_to_the_roles(db, client, login, make_user, lang):
    admin = make_user(roles="admin", name="Admin One")
    login(admin)
    _use(client, lang)
    response = client.post(f"/admin/users/{admin.id}/edit", data={
        "email": admin.email, "name": "Admin One", "phone": "", "org_code": "", "roles": ["agent"], "locale": lang})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    _shown(page, lang, "You cannot remove your own administrator role", "自分自身の管理者権限は外せません")
    assert 'id="roles-error"' in page


@LANGS
def test_refused_organisation_next_to_its_field(db, client, login, make_user, lang):
    """The error goes next to the code input in English too (the view no longer matches Japanese words)."""
    login(make_user(roles="admin"))
    _use(client, lang)
    response = client.post("/admin/organisations/new", data={
        "code": "12AB", "name": "Test City", "kind": "municipality", "prefecture": "東京都", "parent_code": ""})
    page = response.get_data(as_text=True)
    _shown(page, lang, "A municipality's organisation code must be 6 digits.", "自治体の組織コードは6桁の数字にしてください。")
    error = re.search(r'<p class="field-error" id="([\w-]+)-error">', page)
    assert error and error.group(1) == "code"


@LANGS
def test_password_change_refusals_next_to_their_fields(db, client, login, make_user, lang):
    """Wrong current password next to that input, policy reasons next to the new one, in either language."""
    login(make_user())
    _use(client, lang)
    page = client.post("/account/password", data={
        "current_password": "wrong-Passw0rd!", "new_password": "Another-Passw0rd!", "confirm": "Another-Passw0rd!"})
    page = page.get_data(as_text=True)
    _shown(page, lang, "The current password is not correct.", "現在のパスワードが正しくありません。")
    assert 'id="current_password-error"' in page and 'id="new_password-error"' not in page
    page = client.post("/account/password", data={"current_password": PASSWORD, "new_password": "short",
                                                   "confirm": "short"}).get_data(as_text=True)
    _shown(page, lang, "The password must be at least", "パスワードは")
    assert 'id="new_password-error"' in page and 'id="current_password-error"' not in page


def test_import_reasons_follow_the_reader(db, client, login, make_user):
    """Refused lines are kept as message + parameters: the same dry run reads English, then Japanese."""
    login(make_user(roles="admin"))
    _use(client, "en")
    csv = ("email,name,org_code,org_name,org_kind,prefecture,roles\n"
           "not-an-address,Taro Test,131016,Chiyoda,municipality,東京都,requester\n").encode()
    response = client.post("/admin/users/import", data={"file": (io.BytesIO(csv), "users.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    show = response.headers["Location"]
    table = re.search(r'<table id="import-refused">.*?</table>', client.get(show).get_data(as_text=True), re.S)
    assert table and "The email address is not valid: not-an-address" in html.unescape(table.group(0))
    assert not JAPANESE.search(table.group(0))
    refused_csv = client.get(show + "/refused.csv").get_data(as_text=True)
    assert "The email address is not valid: not-an-address" in refused_csv
    _use(client, "ja")
    page = html.unescape(client.get(show).get_data(as_text=True))
    assert "メールアドレスの形式が正しくありません: not-an-address" in page


# --- manuals --------------------------------------------------------------------------------------

@LANGS
def test_knowledge_loop_error_on_the_drafts_page(db, client, login, make_user, lang):
    login(make_user(roles="specialist"))
    _use(client, lang)
    page = client.post("/manuals/drafts/new", data={"group_id": "", "ticket_refs": "ABC"},
                       follow_redirects=True).get_data(as_text=True)
    _shown(page, lang, 'Enter the ticket number "ABC" in the form HD-000123.',
           "チケット番号「ABC」は HD-000123 の形で入力してください。")


# --- outside a request ----------------------------------------------------------------------------

def test_cli_prints_service_errors_in_japanese(app):
    result = app.test_cli_runner().invoke(args=["sla", "compliance", "--month", "2026/10"])
    assert result.exit_code == 2
    assert "月は YYYY-MM の形式で指定してください（例: 2026-10）。" in result.output


def test_the_helpdesk_command_prints_japanese_without_a_request(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "HELPDESK_DEMO": "1"}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "helpdesk", "sla", "compliance", "--month", "x"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "月は YYYY-MM の形式で指定してください" in done.stderr
    assert "Traceback" not in done.stderr


def test_lazy_errors_render_with_and_without_an_app(app):
    from helpdesk.sla.service import SlaError
    from helpdesk.tickets.service import TicketError
    from flask_babel import lazy_gettext as _l

    error = TicketError(_l("ステータスを「%(before)s」から「%(after)s」には変更できません。", before="対応中", after="完了"))
    assert str(error) == "ステータスを「対応中」から「完了」には変更できません。"  # no application at all
    with app.app_context():  # a job or CLI command: Japanese, no request needed
        flask_babel.refresh()
        assert str(SlaError(_l("SLAポリシーが見つかりません。"))) == "SLAポリシーが見つかりません。"
    with app.test_request_context(), flask_babel.force_locale("en"):
        assert str(SlaError(_l("SLAポリシーが見つかりません。"))) == "SLA policy not found."


# --- the source: no new plain-Japanese service errors ---------------------------------------------

#: Modules whose messages reach people through pages (issue 14.5). CLI-only and operator tools stay plain.
SERVICE_MODULES = [
    "helpdesk/tickets/service.py", "helpdesk/tickets/macros.py", "helpdesk/tickets/attachments.py",
    "helpdesk/tickets/timelog.py", "helpdesk/tickets/contacts.py", "helpdesk/accounts/service.py",
    "helpdesk/accounts/twofactor.py", "helpdesk/accounts/importer.py", "helpdesk/accounts/passwords.py",
    "helpdesk/accounts/bulk_import.py", "helpdesk/sla/service.py", "helpdesk/sla/calendar.py", "helpdesk/sla/ical.py",
    "helpdesk/manuals/loop.py", "helpdesk/manuals/service.py", "helpdesk/insights/service.py",
    "helpdesk/api/service.py", "helpdesk/api/webhooks.py", "helpdesk/notify/service.py", "helpdesk/ops/storage.py",
    "helpdesk/ops/privacy.py", "helpdesk/tickets/portal.py", "helpdesk/tickets/intake.py", "helpdesk/tickets/queue.py",
    "helpdesk/tickets/assignment.py", "helpdesk/reports/service.py", "helpdesk/insights/tracker.py",
    "helpdesk/accounts/kana.py", "helpdesk/tickets/requesters.py",
]
_TRANSLATORS = {"_l", "_", "gettext", "lazy_gettext", "ngettext", "lazy_ngettext", "pgettext", "lazy_pgettext"}


def _is_translated(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _TRANSLATORS


def _plain_japanese(node) -> bool:
    """A Japanese string literal (or f-string / concatenation) that no gettext call wraps."""
    if _is_translated(node):
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(JAPANESE.search(node.value))
    return any(_plain_japanese(child) for child in ast.iter_child_nodes(node))


def plain_japanese_errors(source: str) -> list[str]:
    """`raise X("…日本語…")` / `super().__init__(f"…日本語…")` not wrapped in _l / gettext."""
    found = []
    for node in ast.walk(ast.parse(source)):
        call = None
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            call = node.exc
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
              and isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", "") == "super"):
            call = node
        if call is not None and any(_plain_japanese(arg) for arg in [*call.args, *(k.value for k in call.keywords)]):
            found.append(f"{node.lineno}: {ast.unparse(node)[:120]}")
    return found


def test_the_scan_catches_plain_japanese_raises():
    assert plain_japanese_errors('raise TicketError("件名を入力してください。")')
    assert plain_japanese_errors('raise TicketError(f"カテゴリ「{code}」は存在しません。")')
    assert plain_japanese_errors('raise E("一覧: " + ", ".join(x))')
    assert plain_japanese_errors('class E(Exception):\n    def __init__(self):\n        super().__init__("既に送信済みです。")')
    assert not plain_japanese_errors('raise TicketError(_l("カテゴリ「%(code)s」は存在しません。", code=code))')
    assert not plain_japanese_errors('raise ValueError(f"bad stored name {name!r}")')


@pytest.mark.parametrize("path", SERVICE_MODULES)
def test_service_errors_are_translatable(path):
    found = plain_japanese_errors((ROOT / path).read_text(encoding="utf-8"))
    assert found == [], f"{path}: wrap these messages in lazy_gettext (_l) with named placeholders: {found}"


_PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")


def _catalogue() -> dict[str, str]:
    with open(ROOT / "helpdesk/translations/en/LC_MESSAGES/messages.po", "rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id and isinstance(m.id, str)}


@pytest.mark.parametrize("path", SERVICE_MODULES)
def test_every_service_message_has_english_and_matching_placeholders(path):
    catalogue = _catalogue()
    for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
        if not (_is_translated(node) and node.func.id in ("_l", "lazy_gettext", "_", "gettext") and node.args
                and isinstance(node.args[0], ast.Constant)):
            continue
        msgid = node.args[0].value
        assert catalogue.get(msgid), f"{path}:{node.lineno}: no English for {msgid!r}"
        # Japanese left in the English text is only allowed where it quotes the source (sample prefectures).
        foreign = [run for run in re.findall(JAPANESE.pattern + "+", catalogue[msgid]) if run not in msgid]
        assert not foreign, (msgid, catalogue[msgid])
        named = set(_PLACEHOLDER.findall(msgid))
        passed = {k.arg for k in node.keywords}
        assert named == passed, f"{path}:{node.lineno}: placeholders {named} but arguments {passed}"
        assert set(_PLACEHOLDER.findall(catalogue[msgid])) == named, (msgid, catalogue[msgid])


@LANGS
def test_queue_filter_error_in_the_reader_language(db, client, login, agent, lang):
    login(agent)
    _use(client, lang)
    page = html.unescape(client.get("/agent/queue?sort=bogus&priority=P9").get_data(as_text=True))
    if lang == "en":
        assert 'The sort order "bogus" cannot be chosen.' in page
        assert 'Priority "P9" cannot be chosen (P1, P2, P3, P4).' in page
        assert "は選べません" not in page
    else:
        assert "並び順「bogus」は選べません。" in page and "優先度「P9」は選べません（P1, P2, P3, P4）。" in page
