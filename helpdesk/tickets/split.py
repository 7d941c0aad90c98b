"""Split a ticket: selected replies and notes move to a new ticket that links back (issue 17.3).

`split_ticket` is the service (plain values, explicit actor, one commit); the route below is the
agent's form on the ticket page. Like a merge, both timelines record it: 'split' on the original
(→ the new reference) and 'split_from' on the new ticket (→ the original), each with the usual
effects; the two are linked as related tickets, and the change is audited.
"""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.extensions import db
from helpdesk.security import client_ip
from helpdesk.auth import staff_required
from helpdesk.text import one_line
from helpdesk.tickets import bp, service
from helpdesk.tickets import custom_fields as cf
from helpdesk.tickets.models import Attachment, Comment, Ticket, TicketLink
from helpdesk.tickets import views

#: Replies one split may move (a page of checkboxes, not a bulk tool).
MAX_COMMENTS = 200


class SplitError(service.TicketError):
    pass


def split_ticket(session, ticket_id: int, comment_ids, subject: str, actor: Actor, *,
                 expected_version: int | None = None, commit: bool = True) -> Ticket:
    """Move the chosen replies/notes of a ticket to a new ticket (same requester, organisation, category,
    priority, assignee and custom field values) and link the two; returns the new ticket.

    Refused for a merged or closed ticket (its conversation is finished or lives elsewhere), for replies
    that are not this ticket's, and when nothing is chosen.
    """
    source = service._get(session, ticket_id)
    service._check_version(source, expected_version)
    if source.merged_into_id:
        raise SplitError(_l("%(ref)s は別のチケットに統合されているため、分けられません。", ref=source.ref))
    if source.status == "closed":
        raise SplitError(_l("%(ref)s は完了（クローズ）しているため、分けられません。", ref=source.ref))
    ids = sorted({int(i) for i in comment_ids})
    if not ids:
        raise SplitError(_l("新しいチケットに分ける返信を1つ以上選んでください。"))
    if len(ids) > MAX_COMMENTS:
        raise SplitError(_l("一度に分けられる返信は%(n)d件までです。", n=MAX_COMMENTS))
    found = set(session.scalars(select(Comment.id).where(Comment.id.in_(ids), Comment.ticket_id == source.id)))
    if found != set(ids):
        raise SplitError(_l("選んだ返信の一部がこのチケットにありません。画面を開き直してから選んでください。"))
    subject = one_line(subject, 300) or source.subject
    new = service.create_ticket(
        session, actor=actor, subject=subject, body="", channel=source.channel, requester_id=source.requester_id,
        organisation_id=source.organisation_id, category=source.category.code if source.category else None,
        priority=source.priority, assignee_id=source.assignee_id, commit=False)
    session.flush()  # everything the creation queued is written before the replies move underneath it
    # The replies (with their files and logged minutes) change tickets; their ids stay, so links to them hold.
    session.execute(update(Comment).where(Comment.id.in_(ids)).values(ticket_id=new.id)
                    .execution_options(synchronize_session=False))
    session.execute(update(Attachment).where(Attachment.comment_id.in_(ids)).values(ticket_id=new.id)
                    .execution_options(synchronize_session=False))
    session.expire_all()
    source, new = session.get(Ticket, ticket_id), session.get(Ticket, new.id)
    values = cf.values_of(session, [source.id])[source.id]
    if values:
        cf.set_initial_values(session, new, values)
    a, b = sorted((source.id, new.id))
    session.add(TicketLink(ticket_id=a, other_id=b))
    service.refresh_search_text(session, source)
    service.refresh_search_text(session, new)
    detail = {"comment_ids": ids, "count": len(ids)}
    service._event(session, source, actor, "split", None, new.ref, detail)
    service._event(session, new, actor, "split_from", None, source.ref, detail)
    if new.status == "new" and new.assignee_id is not None:
        service._set_status(session, new, "open", actor)  # the assignee is already working on it
    audit.record(session, actor, "ticket.split", "ticket", source.id,
                 {"ref": source.ref, "new_ref": new.ref, "comment_ids": ids, "subject": subject})
    if commit:
        session.commit()
    return new


@bp.post("/tickets/<ref>/split")
@staff_required
def split(ref: str):
    """Agents: 「選択した返信を新しいチケットに分ける」 on the ticket page."""
    try:
        ticket = service.get_visible(db.session, current_user, ref)
    except service.NotFound:
        abort(404)
    from flask_wtf import FlaskForm

    if not FlaskForm().validate():  # CSRF
        abort(400)
    version = request.form.get("version", "")
    raw_ids = request.form.getlist("comment_ids")
    ids = [int(i) for i in raw_ids if i.isdigit() and len(i) < 12]
    subject = request.form.get("split_subject", "")
    actor = Actor.for_user(current_user, client_ip())
    try:
        new = split_ticket(db.session, ticket.id, ids, subject, actor,
                           expected_version=int(version) if version.isdigit() else None)
    except (service.VersionConflict, StaleDataError):
        db.session.rollback()
        flash(_("分けられませんでした: このチケットはあなたが開いた後に他の担当者が更新しました。"
                "最新の内容を確認してから、もう一度選んでください。"), "error")
        return redirect(url_for("tickets.detail", ref=ticket.ref) + "#split")
    except service.TicketError as exc:
        db.session.rollback()
        db.session.expire_all()
        from flask import g

        g.split_error = str(exc)
        g.split_selected = set(ids)
        g.split_subject = subject
        return views._render_detail(db.session.get(Ticket, ticket.id), status=400)
    flash(_("選択した返信を新しいチケット %(ref)s に分けました。", ref=new.ref), "success")
    return redirect(url_for("tickets.detail", ref=new.ref))
