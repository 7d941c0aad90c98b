"""The requester portal: list, search, submit, read, reply, close and rate their organisation's tickets.

Scoping is `service.visible_tickets(user)` / `service.get_visible` (a municipality also sees the
tickets of the clinics registered under it); anything else answers 404. Requesters only ever see
public replies and a whitelist of timeline events: internal notes, their files and internal
events never reach a portal page — not even through search, which matches the public text only.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from helpdesk import audit
from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.auth import login_required
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.text import normalize
from helpdesk.tickets import bp, creation_limit, custom_fields, search, service
from helpdesk.tickets import queue as queue_mod
from helpdesk.tickets.attachments import (MAX_FILES, StorageError, check_uploads, human_size, max_bytes,
                                          store, visible_attachments)
from helpdesk.tickets.models import OPEN_STATUSES, Comment, Ticket, TicketEvent
from helpdesk.tickets.portal_forms import CsatForm, PortalCloseForm, PortalNewForm, PortalReplyForm, new_nonce

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
#: Search ranks this many candidates, then keeps those whose *public* text matches.
SEARCH_CANDIDATES = 300
SEARCH_SHOWN = 50

#: Status filter of the list: key -> statuses.
STATUS_GROUPS = {
    "": (),
    "active": OPEN_STATUSES,
    "resolved": ("resolved",),
    "closed": ("closed",),
}
STATUS_GROUP_LABELS = {"": _l("すべて"), "active": _l("対応中（未解決）"), "resolved": _l("解決済み"),
                       "closed": _l("完了")}

#: What each status means, in plain words for the requester.
STATUS_HELP = {
    "new": _l("受け付けました。担当者が内容を確認します。"),
    "open": _l("担当者が対応しています。"),
    "pending": _l("お客様からのご返信をお待ちしています。下の欄から返信してください。"),
    "escalated": _l("専門の担当者が詳しく調べています。"),
    "resolved": _l("解決済みです。まだ困っている場合は返信してください。問題なければ「完了にする」を押してください。"),
    "closed": _l("完了しました。同じ件で困ったときは、新しいお問い合わせとして送ってください。"),
}

#: Timeline events a requester may see (everything else is internal).
PUBLIC_EVENTS = frozenset({"created", "status", "merge", "merged_in", "csat", "attachment", "split", "split_from"})


# --- service: requester-side rules ------------------------------------------------------------

def may_act(user: User, ticket: Ticket) -> bool:
    """Closing and rating are for the requester who asked (or their organisation if nobody did)."""
    if user.is_staff:
        return False
    if ticket.requester_id is not None:
        return ticket.requester_id == user.id
    return user.organisation_id is not None and ticket.organisation_id == user.organisation_id


def requester_close(session, user: User, ticket_id: int, action: str, actor: Actor) -> Ticket:
    """'resolve': the requester's problem is solved; 'close': a resolved ticket is finished."""
    ticket = service.get_visible(session, user, ticket_id)
    if not may_act(user, ticket):
        raise service.TicketError(_l("このお問い合わせを完了にできるのは、お問い合わせをした方だけです。"))
    if action == "resolve":
        if ticket.status not in OPEN_STATUSES:
            raise service.InvalidTransition(_l("このお問い合わせは既に解決済みか完了しています。"))
        service.change_status(session, ticket.id, "resolved", actor, commit=False)
    elif action == "close":
        if ticket.status != "resolved":
            raise service.InvalidTransition(_l("完了にできるのは解決済みのお問い合わせだけです。"))
        service.change_status(session, ticket.id, "closed", actor, commit=False)
    else:
        raise service.TicketError(_l("この操作はできません。"))
    audit.record(session, actor, f"ticket.portal_{action}", "ticket", ticket.id, {"ref": ticket.ref})
    session.commit()
    return ticket


def requester_rate(session, user: User, ticket_id: int, score: int, comment: str | None, actor: Actor) -> Ticket:
    """CSAT 1–5 with an optional comment, once, after the ticket is resolved."""
    ticket = service.get_visible(session, user, ticket_id)
    if not may_act(user, ticket):
        raise service.TicketError(_l("評価できるのは、お問い合わせをした方だけです。"))
    if ticket.csat_score is not None:
        raise service.TicketError(_l("このお問い合わせは既に評価いただいています。ありがとうございました。"))
    service.rate(session, ticket.id, score, comment, actor, commit=False)
    audit.record(session, actor, "ticket.csat", "ticket", ticket.id, {"ref": ticket.ref, "score": score})
    session.commit()
    return ticket


def submit_ticket(session, user: User, actor: Actor, *, subject: str, description: str, category: str | None,
                  files, nonce: str, custom_values: dict | None = None) -> str:
    """A new web ticket from the portal with its (already checked) files; one commit. Returns its reference
    (read before the commit: the committed ticket would be reloaded just to print it)."""
    ticket = service.create_ticket(session, actor=actor, subject=subject, body=description, channel="web",
                                   requester_id=user.id, organisation_id=user.organisation_id,
                                   category=category or None, nonce=nonce, commit=False)
    custom_fields.set_initial_values(session, ticket, custom_values or {})  # checked by the caller
    for checked in files:
        store(session, ticket, checked, actor)
    ref = ticket.ref
    audit.record(session, actor, "ticket.portal_submitted", "ticket", ticket.id, {"ref": ref, "files": len(files)})
    session.commit()
    return ref


def requester_reply(session, user: User, ticket_id: int, body: str, files, actor: Actor) -> Comment:
    ticket = service.get_visible(session, user, ticket_id)
    comment = service.add_comment(session, ticket.id, body, actor, public=True, via="web", commit=False)
    for checked in files:
        store(session, ticket, checked, actor, comment_id=comment.id)
    audit.record(session, actor, "ticket.portal_reply", "ticket", ticket.id,
                 {"ref": ticket.ref, "comment_id": comment.id, "files": len(files)})
    session.commit()
    return comment


def public_text(session, ticket: Ticket, comments: list[Comment] | None = None) -> str:
    """Subject, body and public replies, normalised like `search_text` (internal notes left out)."""
    if comments is None:
        comments = session.scalars(select(Comment).where(Comment.ticket_id == ticket.id,
                                                         Comment.is_public.is_(True))).all()
    return normalize("\n".join([ticket.subject or "", ticket.body or ""] + [c.body for c in comments if c.is_public]))


def portal_search(session, user: User, q: str, statuses: tuple[str, ...]) -> list[Ticket]:
    """Tickets `user` may see whose public text matches `q`, best first.

    The index-assisted queue search finds candidates over `search_text` (which includes internal
    notes); each candidate is then checked against its public text only, so a word that appears
    only in an internal note finds nothing.
    """
    sq = search.parse_query(q)
    if not sq:
        return []
    filters = queue_mod.QueueFilters(statuses=list(statuses), q=q, sort="relevance")
    page = queue_mod.query_tickets(session, user, filters, limit=min(SEARCH_CANDIDATES, queue_mod.MAX_LIMIT))
    candidates = list(page.items)
    cursor = page.next_cursor
    while cursor and len(candidates) < SEARCH_CANDIDATES:
        page = queue_mod.query_tickets(session, user, filters, cursor=cursor, limit=queue_mod.MAX_LIMIT)
        candidates += page.items
        cursor = page.next_cursor
    if not candidates:
        return []
    ids = [t.id for t in candidates]
    public: dict[int, list[Comment]] = {}
    for comment in session.scalars(select(Comment).where(Comment.ticket_id.in_(ids), Comment.is_public.is_(True))):
        public.setdefault(comment.ticket_id, []).append(comment)
    scored = []
    for ticket in candidates:
        text = public_text(session, ticket, public.get(ticket.id, []))
        if not sq.is_candidate(text):
            continue
        scored.append((search.score_in_python(text, sq), ticket))
    scored.sort(key=lambda item: (-item[0], -item[1].created_at.timestamp(), -item[1].id))
    return [ticket for _score, ticket in scored[:SEARCH_SHOWN]]


@dataclass
class Entry:
    """One item of the requester's conversation view."""

    kind: str  # "message" | "event"
    at: object
    author: str
    mine: bool
    body: str = ""
    label: str = ""
    attachments: list | None = None
    from_desk: bool = False


def _author_label(user: User | None, viewer: User) -> tuple[str, bool, bool]:
    """(label, is the viewer, is the help desk) — staff are shown as the help desk, not by name."""
    if user is None:
        return str(_l("ヘルプデスク")), False, True
    if user.id == viewer.id:
        return str(_l("あなた")), True, False
    if user.is_staff:
        return str(_l("ヘルプデスク")), False, True
    return user.name, False, False


def _event_label(event: TicketEvent) -> str | None:
    from helpdesk.templating import STATUS_LABELS

    if event.kind == "created":
        return str(_l("お問い合わせを受け付けました"))
    if event.kind == "status":
        return str(_l("状態が「%(after)s」になりました", after=STATUS_LABELS.get(event.after or "", event.after)))
    if event.kind == "merge":
        return str(_l("%(ref)s のお問い合わせにまとめました", ref=event.after))
    if event.kind == "merged_in":
        return str(_l("%(ref)s のお問い合わせをこちらにまとめました", ref=event.after))
    if event.kind == "csat":
        return str(_l("満足度の評価をいただきました"))
    if event.kind == "split":
        return str(_l("やり取りの一部を新しいお問い合わせ %(ref)s に分けました", ref=event.after))
    if event.kind == "split_from":
        return str(_l("%(ref)s のやり取りの一部から作ったお問い合わせです", ref=event.after))
    return None


def conversation(session, ticket: Ticket, viewer: User) -> list[Entry]:
    """The original message, public replies with their files, and public events, in time order."""
    files = visible_attachments(session, viewer, ticket)
    public_comment_ids = set(session.scalars(select(Comment.id).where(Comment.ticket_id == ticket.id,
                                                                      Comment.is_public.is_(True))))
    by_comment: dict[int | None, list] = {}
    for f in files:
        if f.comment_id is None or f.comment_id in public_comment_ids:
            by_comment.setdefault(f.comment_id, []).append(f)
    if ticket.requester is None:
        label, mine = str(_l("お問い合わせ内容")), False
    else:
        label, mine, _desk = _author_label(ticket.requester, viewer)
    entries = [Entry("message", ticket.created_at, label, mine, body=ticket.body or "",
                     attachments=by_comment.get(None, []))]
    if not ticket.body and not entries[0].attachments:
        entries = []  # a ticket split from another starts with the moved replies (no text of its own)
    for kind, at, item in service.timeline(session, ticket, include_internal=False):
        if kind == "comment":
            if not item.is_public:  # belt and braces: timeline() already leaves notes out
                continue
            label, mine, desk = _author_label(item.author, viewer)
            entries.append(Entry("message", at, label, mine, body=item.body, from_desk=desk,
                                 attachments=by_comment.get(item.id, [])))
        elif item.kind in PUBLIC_EVENTS and item.kind != "attachment":
            text = _event_label(item)
            if text:
                entries.append(Entry("event", at, "", False, label=text))
    return entries


# --- views ------------------------------------------------------------------------------------

def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def _load(ref: str) -> Ticket:
    try:
        return service.get_visible(db.session, current_user, ref)
    except service.NotFound:
        abort(404)


def _category_choices():
    from flask_babel import get_locale

    locale = str(get_locale() or "ja")
    return [("", _("わからない・選ばない"))] + service.category_choices(db.session, locale)


def _upload_context() -> dict:
    return {"max_bytes": max_bytes(), "max_size": human_size(max_bytes()), "max_files": MAX_FILES,
            "allowed_types": _("PDF、画像（PNG・JPEG・GIF）、テキスト・CSV、Excel（.xlsx）、Word（.docx）")}


def _js(name: str) -> bool:
    return os.path.exists(os.path.join(current_app.static_folder or "", "js", name))


@bp.get("/portal")
@login_required
def portal():
    """The requester's list of their organisation's tickets, with a status filter and search."""
    status_key = request.args.get("status", "")
    if status_key not in STATUS_GROUPS:
        status_key = ""
    q = (request.args.get("q") or "").strip()
    errors = {}
    if len(q) > 200:
        errors["q"] = _("検索する言葉は200文字以内にしてください。")
        q = q[:200]
    statuses = STATUS_GROUPS[status_key]
    next_url, searched = None, bool(q)
    if q:
        tickets = portal_search(db.session, current_user, q, statuses)
    else:
        filters = queue_mod.QueueFilters(statuses=list(statuses))
        try:
            page = queue_mod.query_tickets(db.session, current_user, filters, cursor=request.args.get("cursor"),
                                           limit=PAGE_SIZE)
        except queue_mod.FilterError:
            return redirect(url_for("tickets.portal", status=status_key or None))
        tickets = page.items
        if page.next_cursor:
            next_url = url_for("tickets.portal", status=status_key or None, cursor=page.next_cursor)
    show_org = current_user.is_staff or current_user.org_kind == "municipality"
    return render_template("tickets/portal_list.html", tickets=tickets, status_key=status_key, q=q, errors=errors,
                           status_groups=STATUS_GROUP_LABELS, next_url=next_url, searched=searched,
                           show_org=show_org, first_page=bool(request.args.get("cursor")))


@bp.route("/portal/new", methods=["GET", "POST"])
@login_required
def portal_new():
    """Submit a new ticket (with attachments); manual suggestions appear while typing."""
    form = PortalNewForm()
    form.category.choices = _category_choices()
    status = 200
    refusal, limit_error = None, None
    if request.method == "POST":
        if current_user.is_staff:
            flash(_("担当者は「電話受付」画面からチケットを登録してください。"), "warning")
            return redirect(url_for("tickets.intake"))
        files, file_errors = [], []
        valid = form.validate()
        from helpdesk.tickets.custom_field_views import check_new_ticket_form

        custom_values = check_new_ticket_form(form.category.data)  # messages next to each custom field
        valid = valid and custom_values is not None
        files, file_errors = check_uploads(request.files.getlist(form.files.name))
        if file_errors:
            form.files.errors = list(form.files.errors) + file_errors + [
                _("ファイルはもう一度選び直してください（入力した文章はそのまま残っています）。")]
        if valid and not file_errors:
            refusal = creation_limit.enforce(db.session, creation_limit.bucket_for(current_user),
                                             str(current_user.id), _actor(), "web")
        if refusal is not None:  # nothing written; the form comes back as typed with the message by the button
            limit_error = _limit_message(refusal, had_files=bool(files))
            status = 429
        elif valid and not file_errors:
            try:
                ref = submit_ticket(db.session, current_user, _actor(), subject=form.subject.data,
                                    description=form.description.data, category=form.category.data or None,
                                    files=files, nonce=form.nonce.data, custom_values=custom_values)
            except service.DuplicateSubmission as exc:
                db.session.rollback()
                return _duplicate(exc)
            except StorageError as exc:  # nothing kept: no ticket, no file; the form comes back as typed
                db.session.rollback()
                form.files.errors = list(form.files.errors) + [_(str(exc))]
                status = 503
            except service.TicketError as exc:
                db.session.rollback()
                form.subject.errors = list(form.subject.errors) + [str(exc)]
            else:
                flash(_("お問い合わせを受け付けました。受付番号は %(ref)s です。担当者からの返信をお待ちください。",
                        ref=ref), "success")
                return redirect(url_for("tickets.portal_detail", ref=ref))
        status = status if status in (429, 503) else 400
    if not form.nonce.data:
        form.nonce.data = new_nonce()
    headers = {"Retry-After": str(refusal.retry_after)} if refusal is not None else {}
    return render_template("tickets/portal_new.html", form=form, has_suggest_js=_js("suggest.js"),
                           suggest_role=current_user.org_kind or "", limit_error=limit_error,
                           **_upload_context()), status, headers


def _limit_message(refusal: creation_limit.Refusal, *, had_files: bool) -> str:
    if refusal.retry_after >= 60:
        wait = _("約%(n)d分後", n=math.ceil(refusal.retry_after / 60))
    else:
        wait = _("%(n)d秒後", n=refusal.retry_after)
    text = _("短い時間に多くのお問い合わせが送信されたため、受け付けを一時的に止めています。"
             "%(wait)sにもう一度「送信する」を押してください（入力した文章はそのまま残っています）。", wait=wait)
    if had_files:
        text += " " + _("添付ファイルは送信の前にもう一度選んでください。")
    return text


def _duplicate(exc: service.DuplicateSubmission):
    flash(_("このお問い合わせは既に受け付けています（二重には登録していません）。"), "warning")
    if exc.ticket_id:
        ticket = db.session.get(Ticket, exc.ticket_id)
        if ticket is not None and service.can_see(current_user, ticket):
            return redirect(url_for("tickets.portal_detail", ref=ticket.ref))
    return redirect(url_for("tickets.portal"))


def _render_detail(ticket: Ticket, *, reply_form=None, csat_form=None, status: int = 200):
    merged_into = db.session.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    if merged_into is not None and not service.can_see(current_user, merged_into):
        merged_into = None
    can_act = may_act(current_user, ticket)
    show_reply = ticket.status != "closed" and not current_user.is_staff
    show_csat = ticket.status in ("resolved", "closed") and can_act and ticket.csat_score is None
    # Errors of a form the page no longer shows (e.g. the ticket was closed meanwhile) go on top.
    notices = list(reply_form.body.errors if reply_form is not None and not show_reply else [])
    notices += list(csat_form.score.errors if csat_form is not None and not show_csat else [])
    return render_template(
        "tickets/portal_detail.html", ticket=ticket, entries=conversation(db.session, ticket, current_user),
        reply_form=reply_form or PortalReplyForm(formdata=None), csat_form=csat_form or CsatForm(formdata=None),
        close_form=PortalCloseForm(formdata=None), can_act=can_act, merged_into=merged_into,
        show_reply=show_reply, show_csat=show_csat, notices=notices,
        status_help=STATUS_HELP.get(ticket.status, ""), is_open=ticket.status in OPEN_STATUSES,
        **_upload_context()), status


@bp.get("/portal/tickets/<ref>")
@login_required
def portal_detail(ref: str):
    """One ticket as the requester sees it: status, public replies, reply, close, rate."""
    return _render_detail(_load(ref))


@bp.post("/portal/tickets/<ref>/reply")
@login_required
def portal_reply(ref: str):
    ticket = _load(ref)
    form = PortalReplyForm()
    if current_user.is_staff:
        flash(_("担当者はチケット画面から返信してください。"), "warning")
        return redirect(url_for("tickets.detail", ref=ticket.ref))
    valid = form.validate()
    files, file_errors = check_uploads(request.files.getlist(form.files.name))
    if file_errors:
        form.files.errors = list(form.files.errors) + file_errors + [
            _("ファイルはもう一度選び直してください（入力した文章はそのまま残っています）。")]
    if not valid or file_errors:
        return _render_detail(ticket, reply_form=form, status=400)
    try:
        requester_reply(db.session, current_user, ticket.id, form.body.data, files, _actor())
    except StaleDataError:
        db.session.rollback()
        form.body.errors = list(form.body.errors) + [_("同時に更新がありました。もう一度「返信する」を押してください。")]
        return _render_detail(db.session.get(Ticket, ticket.id), reply_form=form, status=409)
    except StorageError as exc:
        db.session.rollback()
        form.files.errors = list(form.files.errors) + [_(str(exc))]
        return _render_detail(db.session.get(Ticket, ticket.id), reply_form=form, status=503)
    except service.TicketError as exc:
        db.session.rollback()
        form.body.errors = list(form.body.errors) + [str(exc)]
        return _render_detail(db.session.get(Ticket, ticket.id), reply_form=form, status=400)
    flash(_("返信を送信しました。"), "success")
    return redirect(url_for("tickets.portal_detail", ref=ticket.ref) + "#conversation-end")


@bp.post("/portal/tickets/<ref>/close")
@login_required
def portal_close(ref: str):
    ticket = _load(ref)
    form = PortalCloseForm()
    if not form.validate():
        abort(400)
    try:
        requester_close(db.session, current_user, ticket.id, form.action.data, _actor())
    except (service.TicketError, StaleDataError) as exc:
        db.session.rollback()
        flash(str(exc) if isinstance(exc, service.TicketError) else _("もう一度お試しください。"), "error")
        return redirect(url_for("tickets.portal_detail", ref=ticket.ref))
    if form.action.data == "resolve":
        flash(_("「解決した」と記録しました。よろしければ対応の満足度を教えてください。"), "success")
        return redirect(url_for("tickets.portal_detail", ref=ticket.ref) + "#csat")
    flash(_("お問い合わせを完了にしました。"), "success")
    return redirect(url_for("tickets.portal_detail", ref=ticket.ref) + "#csat")


@bp.post("/portal/tickets/<ref>/rate")
@login_required
def portal_rate(ref: str):
    ticket = _load(ref)
    form = CsatForm()
    if not form.validate():
        return _render_detail(ticket, csat_form=form, status=400)
    try:
        requester_rate(db.session, current_user, ticket.id, form.score.data, form.comment.data, _actor())
    except (service.TicketError, StaleDataError) as exc:
        db.session.rollback()
        form.score.errors = list(form.score.errors) + [
            str(exc) if isinstance(exc, service.TicketError) else _("もう一度お試しください。")]
        return _render_detail(db.session.get(Ticket, ticket.id), csat_form=form, status=400)
    flash(_("評価をお送りいただき、ありがとうございました。"), "success")
    return redirect(url_for("tickets.portal_detail", ref=ticket.ref) + "#csat")
