"""Phone intake: log a call in seconds — caller look-up, ticket, handle time, first-contact resolution.

`log_call` and `append_call` are the service functions (plain values, explicit actor, one commit);
the routes below parse the form and call them. A one-time form nonce makes a double click or a
browser retry land on the ticket the first post created, never on a second ticket.
"""
from __future__ import annotations

import datetime as dt
import logging
import os

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy.exc import IntegrityError

from helpdesk import audit
from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.auth import staff_required
from helpdesk.common import utcnow
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.text import clean_input
from helpdesk.tickets import bp, creation_limit, custom_fields, repository, service
from helpdesk.tickets.contacts import ContactError, create_contact, find_organisation, search_contacts
from helpdesk.tickets.models import FormNonce, Ticket
from helpdesk.tickets.portal_forms import AppendCallForm, IntakeForm, new_nonce
from helpdesk.templating import STATUS_LABELS
from helpdesk.tickets.custom_field_views import check_new_ticket_form

logger = logging.getLogger(__name__)

#: A call start older than this (page left open) is not trusted for the handle time.
MAX_CALL_SECONDS = 8 * 3600
#: Tolerated clock difference between browser and server, in seconds.
CLOCK_SKEW = 120


# --- service ----------------------------------------------------------------------------------

def call_window(started_ms: str | int | None, now: dt.datetime | None = None) -> tuple[dt.datetime | None, dt.datetime]:
    """(call start, call end) from the form's epoch milliseconds; start is None when implausible."""
    now = now or utcnow()
    try:
        started = dt.datetime.fromtimestamp(int(started_ms) / 1000, tz=dt.timezone.utc) if started_ms else None
    except (TypeError, ValueError, OverflowError, OSError):
        started = None
    if started is not None:
        if started > now + dt.timedelta(seconds=CLOCK_SKEW) or now - started > dt.timedelta(seconds=MAX_CALL_SECONDS):
            started = None
        elif started > now:
            started = now
    return started, now


def _check_nonce(session, nonce: str | None) -> None:
    if nonce:
        used = session.get(FormNonce, nonce)
        if used is not None:
            raise service.DuplicateSubmission(used.ticket_id)


def _caller(session, caller_id: int | None, new_contact: dict | None, actor: Actor) -> User:
    if caller_id:
        user = session.get(User, caller_id)
        if user is None or not user.is_active:
            raise ContactError({"caller_search": _l("選んだ発信者が見つかりません。もう一度検索して選んでください。")})
        return user
    if not new_contact:
        raise ContactError({"caller_search": _l("発信者を検索して選ぶか、新しい連絡先を入力してください。")})
    return create_contact(session, actor=actor, **new_contact)


def log_call(session, actor: Actor, *, subject: str, description: str = "", answer: str = "",
             caller_id: int | None = None, new_contact: dict | None = None, category: str | None = None,
             priority: str = "P3", call_started_at: dt.datetime | None = None,
             call_ended_at: dt.datetime | None = None, resolved_on_call: bool = False,
             nonce: str | None = None, assign_to_actor: bool = True, custom_values: dict | None = None) -> Ticket:
    """Create the ticket of a phone call (and the caller if new); one commit.

    `new_contact` is {name, email, phone, org_code}. The answer given on the phone, if any, is kept
    as a public reply (via phone). `resolved_on_call` resolves the ticket and marks it
    first-contact resolution. Raises ContactError (per field), TicketError, DuplicateSubmission.
    """
    # A repeated nonce is refused by create_ticket (form_nonces primary key): no look-up first.
    try:
        caller = _caller(session, caller_id, new_contact, actor)
    except IntegrityError:
        # Two posts of one form creating the same new contact: the first one wins.
        session.rollback()
        _check_nonce(session, nonce)
        raise ContactError({"new_email": _l("このメールアドレスは既に登録されています。上の検索で発信者として選んでください。")})
    answer = clean_input(answer, 100_000)
    ticket = service.create_ticket(
        session, actor=actor, subject=subject, body=description, channel="phone", requester_id=caller.id,
        organisation_id=caller.organisation_id, category=category or None, priority=priority, nonce=nonce,
        call_started_at=call_started_at, call_ended_at=call_ended_at,
        resolved_on_call=resolved_on_call and not answer,
        assignee_id=actor.user_id if assign_to_actor and actor.user_id else None, commit=False)
    custom_fields.set_initial_values(session, ticket, custom_values or {})  # checked by the caller
    if answer:
        service.add_comment(session, ticket.id, answer, actor, public=True, via="phone", commit=False)
        if resolved_on_call:
            ticket.resolved_on_first_contact = True
            service.change_status(session, ticket.id, "resolved", actor, commit=False)
    elif not resolved_on_call and ticket.assignee_id and ticket.status == "new":
        # The agent is already working on it: they answered the call.
        service.change_status(session, ticket.id, "open", actor, commit=False)
    audit.record(session, actor, "ticket.phone_intake", "ticket", ticket.id,
                 {"ref": ticket.ref, "caller_id": caller.id, "new_contact": caller_id is None,
                  "handle_seconds": ticket.handle_seconds, "resolved_on_first_contact": ticket.resolved_on_first_contact})
    shown = {"id": ticket.id, "subject": ticket.subject, "resolved_on_first_contact": ticket.resolved_on_first_contact}
    session.commit()
    # What the confirmation message shows, kept as loaded: no reload of the ticket after the commit.
    repository.keep_as_loaded(ticket, **shown)
    return ticket


def append_call(session, actor: Actor, ticket_id: int, *, notes: str, answer: str = "", subject: str = "",
                caller_id: int | None = None, call_started_at: dt.datetime | None = None,
                call_ended_at: dt.datetime | None = None, nonce: str | None = None) -> Ticket:
    """Add a call to an existing ticket: the notes as an internal note, the answer as a public reply."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise service.NotFound(_l("チケットが見つかりません。"))
    _check_nonce(session, nonce)
    seconds = None
    if call_started_at and call_ended_at and call_ended_at >= call_started_at:
        seconds = int((call_ended_at - call_started_at).total_seconds())
    caller = session.get(User, caller_id) if caller_id else None
    lines = ["【電話】" + (f"{caller.name}様より" if caller else "お電話がありました")]
    if seconds is not None:
        lines[0] += f"（通話 {seconds // 60}分{seconds % 60:02d}秒）"
    subject, notes = clean_input(subject, 300), clean_input(notes, 100_000)
    if subject:
        lines.append(f"件名: {subject}")
    if notes:
        lines.append(notes)
    answer = clean_input(answer, 100_000)
    if not notes and not answer and not subject:
        raise service.TicketError(_l("追加する通話メモを入力してください。"))
    if nonce:
        session.add(FormNonce(nonce=nonce, ticket_id=ticket.id))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            _check_nonce(session, nonce)
            raise
    service.add_comment(session, ticket.id, "\n".join(lines), actor, public=False, via="phone", commit=False)
    if answer:
        service.add_comment(session, ticket.id, answer, actor, public=True, via="phone", commit=False)
    audit.record(session, actor, "ticket.phone_call_added", "ticket", ticket.id,
                 {"ref": ticket.ref, "caller_id": caller_id, "call_seconds": seconds})
    session.commit()
    return ticket


# --- views ------------------------------------------------------------------------------------

def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def _category_choices():
    from flask_babel import get_locale

    return [("", _("（未分類）"))] + service.category_choices(db.session, str(get_locale() or "ja"))


def _static_exists(name: str) -> bool:
    return os.path.exists(os.path.join(current_app.static_folder or "", "js", name))


def _selected_caller(form: IntakeForm):
    if form.caller_id.data and form.caller_id.data.isdigit():
        user = db.session.get(User, int(form.caller_id.data))
        if user is not None:
            return user
    return None


def _render(form: IntakeForm, status: int = 200, limit_error: str | None = None, headers: dict | None = None):
    if not form.nonce.data:
        form.nonce.data = new_nonce()
    if not form.call_started_at.data:
        form.call_started_at.data = str(int(utcnow().timestamp() * 1000))
    new_contact_errors = any(getattr(form, n).errors for n in ("new_name", "new_email", "new_phone", "new_org_code"))
    return render_template(
        "tickets/intake.html", form=form, caller=_selected_caller(form), new_contact_open=new_contact_errors or bool(
            (form.new_name.data or form.new_email.data or form.new_phone.data or form.new_org_code.data)
            and not form.caller_id.data),
        has_suggest_js=_static_exists("suggest.js"), server_now_ms=int(utcnow().timestamp() * 1000),
        limit_error=limit_error), status, headers or {}


@bp.route("/agent/intake", methods=["GET", "POST"])
@staff_required
def intake():
    """The phone intake screen; POST logs the call and gives a fresh form for the next one."""
    form = IntakeForm()
    form.category.choices = _category_choices()
    if request.method == "GET":
        form = IntakeForm(formdata=None)
        form.category.choices = _category_choices()
        return _render(form)
    valid = form.validate()
    custom_values = check_new_ticket_form(form.category.data)  # messages next to each custom field
    if not valid or custom_values is None:
        return _render(form, 400)
    # The staff limit (far above any person's pace): a script driving this form stops here, nothing written.
    refusal = creation_limit.enforce(db.session, "staff", str(current_user.id), _actor(), "phone")
    if refusal is not None:
        return _render(form, 429, limit_error=_(
            "短い時間に登録された件数が上限（%(amount)d件）を超えました。%(n)d秒後にもう一度「登録する」を押してください"
            "（入力した内容はそのまま残っています）。", amount=refusal.amount, n=refusal.retry_after),
            headers={"Retry-After": str(refusal.retry_after)})
    started, ended = call_window(form.call_started_at.data)
    new_contact = None
    if not form.caller_id.data:
        new_contact = {"name": form.new_name.data, "email": form.new_email.data, "phone": form.new_phone.data,
                       "org_code": form.new_org_code.data}
    try:
        ticket = log_call(db.session, _actor(), subject=form.subject.data, description=form.description.data or "",
                          answer=form.answer.data or "", caller_id=int(form.caller_id.data) if form.caller_id.data else None,
                          new_contact=new_contact, category=form.category.data or None, priority=form.priority.data,
                          call_started_at=started, call_ended_at=ended, resolved_on_call=form.resolved_on_call.data,
                          nonce=form.nonce.data, custom_values=custom_values)
    except service.DuplicateSubmission as exc:
        db.session.rollback()
        return _duplicate(exc)
    except ContactError as exc:
        db.session.rollback()
        for name, message in exc.field_errors.items():
            getattr(form, name).errors = list(getattr(form, name).errors) + [message]
        return _render(form, 400)
    except service.TicketError as exc:
        db.session.rollback()
        form.subject.errors = list(form.subject.errors) + [str(exc)]
        return _render(form, 400)
    _flash_saved(ticket, _("登録しました"))
    if started is None:
        flash(_("通話開始時刻が正しく記録されていなかったため、対応時間は記録していません。"), "warning")
    return redirect(url_for("tickets.intake"))


def _flash_saved(ticket: Ticket, lead: str) -> None:
    link = Markup('<a href="{url}">{ref}</a>').format(url=url_for("tickets.detail", ref=ticket.ref), ref=ticket.ref)
    extra = ""
    if ticket.resolved_on_first_contact:
        extra = _("（一次解決）")
    flash(Markup("{lead}: {link} {subject}{extra}").format(lead=lead, link=link, subject=escape(ticket.subject),
                                                            extra=extra), "success")


def _duplicate(exc: service.DuplicateSubmission):
    ticket = db.session.get(Ticket, exc.ticket_id) if exc.ticket_id else None
    if ticket is None:
        flash(_("このフォームは既に送信済みです。"), "warning")
        return redirect(url_for("tickets.intake"))
    flash(_("このフォームは既に送信済みです（二重登録はしていません）: %(ref)s", ref=ticket.ref), "warning")
    return redirect(url_for("tickets.detail", ref=ticket.ref))


@bp.post("/agent/intake/append")
@staff_required
def intake_append():
    """Add the call to an existing ticket (from the duplicate hint) instead of opening a new one."""
    form = AppendCallForm()
    if not form.validate():
        flash(_("追加先のチケットを選べませんでした。もう一度お試しください。"), "error")
        return redirect(url_for("tickets.intake"))
    try:
        ticket = service.get_visible(db.session, current_user, form.target.data.strip())
    except service.NotFound:
        abort(404)
    started, ended = call_window(form.call_started_at.data)
    try:
        append_call(db.session, _actor(), ticket.id, notes=form.description.data or "", answer=form.answer.data or "",
                    subject=form.subject.data or "",
                    caller_id=int(form.caller_id.data) if form.caller_id.data else None,
                    call_started_at=started, call_ended_at=ended, nonce=form.nonce.data)
    except service.DuplicateSubmission as exc:
        db.session.rollback()
        return _duplicate(exc)
    except service.TicketError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("tickets.intake"))
    _flash_saved(ticket, _("既存のチケットに通話を追加しました"))
    return redirect(url_for("tickets.intake"))


@bp.get("/agent/contacts")
@staff_required
def contacts():
    """Caller type-ahead: JSON list of matching contacts."""
    q = clean_input(request.args.get("q", ""), 100)
    try:
        limit = min(max(int(request.args.get("limit", 10)), 1), 25)
    except ValueError:
        limit = 10
    results = [c.as_json() for c in search_contacts(db.session, q, limit=limit)] if q else []
    return jsonify({"query": q, "results": results})


@bp.post("/agent/intake/similar")
@staff_required
def intake_similar():
    """Duplicate hint: open tickets of the caller's organisation with similar text (JSON)."""
    payload = request.get_json(silent=True) or {}
    text = clean_input(str(payload.get("text") or ""), 2000)
    org_id = None
    caller_id = str(payload.get("caller_id") or "")
    if caller_id.isdigit() and len(caller_id) < 12:
        caller = db.session.get(User, int(caller_id))
        org_id = caller.organisation_id if caller else None
    elif payload.get("org_code"):
        org = find_organisation(db.session, str(payload.get("org_code"))[:32])
        org_id = org.id if org else None
    if org_id is None or len(text.strip()) < 2:
        return jsonify({"tickets": []})
    found = service.similar_open_tickets(db.session, org_id, text, limit=5)
    return jsonify({"tickets": [
        {"ref": s.ticket.ref, "subject": s.ticket.subject, "status": s.ticket.status,
         "status_label": str(STATUS_LABELS.get(s.ticket.status, s.ticket.status)),
         "created_at": s.ticket.created_at.isoformat(), "score": s.score,
         "url": url_for("tickets.detail", ref=s.ticket.ref)} for s in found]})

