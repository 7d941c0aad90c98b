"""HTTP views: the agent queue, the agent ticket page, macros admin, the presence ping."""
from __future__ import annotations

import os
from typing import Callable
from urllib.parse import urlencode

from flask import (abort, current_app, flash, jsonify, redirect, render_template, request, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.datastructures import MultiDict

from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.auth import admin_required, login_required, staff_required
from helpdesk.extensions import db
from helpdesk.security import client_ip, safe_next
from helpdesk.templating import ROLE_LABELS, STATUS_LABELS
from helpdesk.web import shows_refusals
from helpdesk.common import utcnow
from helpdesk.tickets import bp, display, forms, live, macros, queue as queue_mod, saved_views, service, timelog
from helpdesk.tickets.models import (TIERS, Attachment, Category, Macro, SavedView, Ticket,
                                     TicketArticle, TicketEvent, TicketTag, parse_ref)

#: Built-in views of the queue: (key, label, query args).
BUILTIN_VIEWS = [
    ("open", _l("未解決すべて"), [("status", "active")]),
    ("mine", _l("自分の担当"), [("assignee", "me"), ("status", "active")]),
    ("unassigned", _l("未割当"), [("assignee", "none"), ("status", "active")]),
    ("p1", _l("P1 未解決"), [("priority", "P1"), ("status", "active")]),
    ("escalated", _l("エスカレーション中"), [("status", "escalated")]),
    ("breached", _l("SLA超過"), [("sla", "breached"), ("status", "active")]),
]
PAGE_SIZE = 50


def _actor() -> Actor:
    return Actor.for_user(current_user, client_ip())


def _categories():
    return list(db.session.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.position)))


def _staff_users():
    users = db.session.scalars(select(User).where(User.organisation_id.is_(None), User.state != "disabled")
                               .order_by(User.name).limit(500)).all()
    return [u for u in users if u.is_staff]


def _locale() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "ja")


def _category_label(category: Category) -> str:
    return category.label(_locale())


# --- queue ----------------------------------------------------------------------------------

def _view_args(key: str, user_views: list[SavedView]):
    for k, _label, args in BUILTIN_VIEWS:
        if k == key:
            return args
    for view in user_views:
        if key == f"s{view.id}":
            return list(MultiDict(_parse_qs(view.query)).items(multi=True))
    return None


def _parse_qs(query: str):
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=False)


@bp.get("/agent/queue")
@staff_required
def queue():
    user_views = saved_views.visible_views(db.session, current_user)
    args = MultiDict(request.args)
    view_key = args.pop("view", None)
    cursor = args.pop("cursor", None)
    fragment = args.pop("fragment", None) == "rows"  # the live queue refreshes only its rows
    has_filters = queue_mod.has_filter_keys(args)
    if not has_filters:
        view_key = view_key or "open"
        view_args = _view_args(view_key, user_views)
        if view_args is None:
            abort(404)
        args = MultiDict(view_args)
    errors: dict[str, str] = {}
    try:
        filters = queue_mod.parse_filters(args)
    except queue_mod.FilterError as exc:
        errors = exc.field_errors
        for key in errors:
            args.poplist(key)
        filters = queue_mod.parse_filters(args)
    try:
        page = queue_mod.query_tickets(db.session, current_user, filters, cursor=cursor, limit=PAGE_SIZE)
    except queue_mod.FilterError as exc:
        errors.update(exc.field_errors)
        page = queue_mod.query_tickets(db.session, current_user, filters, limit=PAGE_SIZE)
    row_context = dict(
        page=page, unread=live.unread_ids(db.session, current_user.id, [t.id for t in page.items]),
        sla_countdown=lambda t, now=utcnow(): display.sla_countdown(t, now),
        status_labels={k: str(v) for k, v in STATUS_LABELS.items()},
        role_labels={k: str(v) for k, v in ROLE_LABELS.items()})
    categories = _categories()
    row_context["category_labels"] = {c.id: _category_label(c) for c in categories}
    if fragment:
        return render_template("tickets/_queue_rows.html", **row_context)
    counts = {}
    for key, _label, vargs in BUILTIN_VIEWS:
        counts[key] = queue_mod.cached_count(db.session, current_user, queue_mod.parse_filters(MultiDict(vargs)))
    for view in user_views:
        try:
            counts[f"s{view.id}"] = queue_mod.cached_count(
                db.session, current_user, queue_mod.parse_filters(MultiDict(_parse_qs(view.query))))
        except queue_mod.FilterError:
            counts[f"s{view.id}"] = None
    current_args = filters.to_args()
    next_url = None
    if page.next_cursor:
        next_url = url_for("tickets.queue") + "?" + urlencode(
            current_args + ([("view", view_key)] if view_key else []) + [("cursor", page.next_cursor)])
    shown_args = current_args + ([("view", view_key)] if view_key and not has_filters else [])
    return render_template(
        "tickets/queue.html", filters=filters, errors=errors, view_key=view_key, **row_context,
        active_filter_count=len({k for k, _v in current_args if k not in ("q", "sort")}) if has_filters else 0,
        priority_labels={k: str(v) for k, v in display.PRIORITY_LABELS.items()},
        tier_labels={k: str(v) for k, v in display.TIER_LABELS.items()}, known_tags=_known_tags(),
        rows_url=None if cursor else url_for("tickets.queue") + "?" + urlencode(shown_args + [("fragment", "rows")]),
        last_event_id=live.last_event_id(db.session), live=bool(current_app.config.get("REDIS_URL")),
        builtin_views=BUILTIN_VIEWS, user_views=user_views, counts=counts, next_url=next_url,
        first_url=url_for("tickets.queue") + "?" + urlencode(current_args) if cursor else None,
        current_query=urlencode(current_args), categories=categories, staff=_staff_users(),
        bulk_form=forms.BulkForm(back=request.full_path), view_form=forms.SavedViewForm(query=urlencode(current_args)),
        statuses=list(STATUS_LABELS.items()), tiers=TIERS, category_label=_category_label,
        now_count=counts.get(view_key) if (view_key and not has_filters and counts.get(view_key) is not None)
        else queue_mod.cached_count(db.session, current_user, filters),
    )


def _known_tags() -> list[str]:
    """The most used tags, for the bulk tag picker."""
    from sqlalchemy import func

    return list(db.session.scalars(select(TicketTag.tag).group_by(TicketTag.tag)
                                   .order_by(func.count().desc(), TicketTag.tag).limit(50)))


@bp.get("/agent/queue/stream")
@staff_required
def queue_stream():
    """Server-sent events of ticket changes (Redis pub/sub); see tickets/live.py."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    after = int(raw) if raw.isdigit() and len(raw) < 15 else 0
    app = current_app._get_current_object()
    return current_app.response_class(
        live.stream(app, after, max_seconds=app.config.get("LIVE_STREAM_SECONDS", 55)),
        mimetype="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.get("/agent/queue/changes")
@staff_required
def queue_changes():
    """Polling fallback of the live queue (no Redis): changes after event id `after` (JSON)."""
    raw = request.args.get("after", "0")
    after = int(raw) if raw.isdigit() and len(raw) < 15 else 0
    changes = live.changes_after(db.session, after)
    return jsonify({"changes": changes, "last": changes[-1]["id"] if changes else after})


@bp.post("/agent/queue/bulk")
@staff_required
@shows_refusals(service.TicketError, redirect_to=lambda: _bulk_back(forms.BulkForm()))
def bulk():
    form = forms.BulkForm()
    back = _bulk_back(form)
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit() and len(i) < 12]
    if not form.validate():
        flash(_("一括操作の内容を確認してください。"), "error")
        return redirect(back)
    if not ids:
        flash(_("一括操作するチケットを選んでください。"), "error")
        return redirect(back)
    action = form.action.data
    # The pickers post value_<action> (one select/input per action); `value` is the plain field.
    value = (request.form.get(f"value_{action}") or form.value.data or "").strip()[:100]
    if action == "assign":
        value = _resolve_assignee(value)
        if value is False:
            flash(_("担当者はメールアドレス、利用者ID、「me」または「none」で指定してください。"), "error")
            return redirect(back)
    elif not value:
        flash(_("設定する値を入力してください。"), "error")
        return redirect(back)
    result = service.bulk_apply(db.session, ids, action, value, _actor(), visible_to=current_user)
    if result.done:
        flash(_("%(n)d 件に適用しました: %(refs)s", n=len(result.done), refs=", ".join(result.done)), "success")
    for ref, reason in result.refused:
        flash(_("%(ref)s は変更できませんでした: %(reason)s", ref=ref, reason=display.reason_in_words(reason)),
              "error")
    return redirect(back)


def _bulk_back(form) -> str:
    return safe_next(form.back.data) or url_for("tickets.queue")


def _resolve_assignee(value: str):
    """'me', 'none', a user id or an e-mail → user id / None; False when unknown."""
    if value in ("", "none"):
        return None
    if value == "me":
        return current_user.id
    if value.isdigit() and len(value) < 12:
        return int(value)
    user = db.session.scalar(select(User).where(User.email == value.lower()))
    return user.id if user else False


@bp.post("/agent/queue/views")
@staff_required
def save_view():
    form = forms.SavedViewForm()
    if not form.validate():
        flash(_("ビューの名前を入力してください（100文字以内）。"), "error")
        return redirect(url_for("tickets.queue") + "?" + (form.query.data or ""))
    try:
        view = saved_views.save_view(db.session, current_user, _actor(), form.name.data, form.query.data or "")
    except queue_mod.FilterError:
        flash(_("この条件は保存できません。条件を直してから保存してください。"), "error")
        return redirect(url_for("tickets.queue"))
    flash(_("ビュー「%(name)s」を保存しました。", name=view.name), "success")
    return redirect(url_for("tickets.queue", view=f"s{view.id}"))


@bp.post("/agent/queue/views/<int:view_id>/delete")
@staff_required
def delete_view(view_id: int):
    form = forms.DeleteForm()
    if not form.validate() or not saved_views.delete_view(db.session, current_user, _actor(), view_id):
        abort(404)
    flash(_("ビューを削除しました。"), "success")
    return redirect(url_for("tickets.queue"))


# --- ticket page ----------------------------------------------------------------------------

def _load(ref: str) -> Ticket:
    try:
        return service.get_visible(db.session, current_user, ref)
    except service.NotFound:
        abort(404)


def _last_event_id(items) -> int:
    return max((obj.id for kind, _at, obj in items if kind == "event"), default=0)


def _fill_choices(ticket: Ticket, reply=None, fields=None):
    statuses = forms.status_choices()
    if reply is not None:
        reply.macro.choices = [("", _("（使わない）"))] + [(str(m.id), m.title) for m in macros.active_macros(db.session)]
        reply.status_after.choices = [("", _("（変更しない）"))] + statuses
    if fields is not None:
        fields.category.choices = [("", _("（未分類）"))] + service.category_choices(db.session, _locale())
        fields.status.choices = statuses
        fields.assignee.choices = [("", _("（未割当）"))] + [(str(u.id), u.name) for u in _staff_users()]


def _render_detail(ticket: Ticket, *, status: int = 200, changes=None, **override):
    items = service.timeline(db.session, ticket, include_internal=True)
    version, last_event = ticket.version, _last_event_id(items)
    reply = override.get("reply") or forms.ReplyForm(formdata=None, version=version, seen_event=last_event)
    fields = override.get("fields") or forms.FieldsForm(
        formdata=None, version=version, seen_event=last_event, priority=ticket.priority,
        category=ticket.category.code if ticket.category else "", status=ticket.status,
        assignee=str(ticket.assignee_id or ""))
    escalate = override.get("escalate") or forms.EscalateForm(formdata=None, version=version, seen_event=last_event)
    merge = override.get("merge") or forms.MergeForm(formdata=None, version=version, seen_event=last_event)
    _fill_choices(ticket, reply, fields)
    for form in (reply, fields, escalate, merge):  # the agent saves against what the page now shows
        form.version.data, form.seen_event.data = version, last_event
        form.version.raw_data = form.seen_event.raw_data = None  # render the new values, not the posted ones
    articles = db.session.scalars(select(TicketArticle).where(TicketArticle.ticket_id == ticket.id)
                                  .order_by(TicketArticle.linked_at)).all()
    attachments = db.session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)
                                     .order_by(Attachment.id)).all()
    merged_into = db.session.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    merged_from = db.session.scalars(select(Ticket).where(Ticket.merged_into_id == ticket.id)).all()
    static = current_app.static_folder or ""
    service.touch_presence(ticket.id, current_user.id, current_user.name, "viewing")
    people = display.people_by_email(db.session, [obj for kind, _at, obj in items if kind == "event"]
                                     + list(changes or []))
    categories = display.category_names(db.session, _locale())
    return render_template(
        "tickets/detail.html", ticket=ticket, items=items, reply_form=reply, fields_form=fields,
        escalate_form=escalate, merge_form=merge, tag_form=override.get("tag") or forms.TagForm(formdata=None),
        remove_tag_form=forms.RemoveTagForm(formdata=None), link_form=override.get("link") or forms.LinkForm(formdata=None),
        related=service.related_tickets(db.session, ticket.id), articles=articles, attachments=attachments,
        merged_into=merged_into, merged_from=merged_from, changes=changes,
        internal_comment_ids={obj.id for kind, _at, obj in items if kind == "comment" and not obj.is_public},
        has_attachments_partial=_has_template("tickets/_attachments.html"),
        has_help_context=_has_template("api/_help_context.html"),
        has_suggest_js=os.path.exists(os.path.join(static, "js", "suggest.js")),
        manuals_link_url=_url_or_none("manuals.link"), account_url=_account_url(ticket),
        others=service.presence(ticket.id, exclude_user_id=current_user.id), category_label=_category_label,
        timeline_rows=display.timeline_with_merged(db.session, ticket, items),
        describe=lambda event: display.describe(event, people, categories), linkify=display.linkify,
        account_state=display.account_state, context=display.context_tickets(db.session, ticket),
        merge_needs_confirm=override.get("merge_needs_confirm", False),
        macro_category=override.get("macro_category"),
        tiers_above=[t for t in TIERS if TIERS.index(t) > TIERS.index(ticket.tier)],
    ), status


def _has_template(name: str) -> bool:
    from jinja2 import TemplateNotFound

    try:
        current_app.jinja_env.get_template(name)
        return True
    except TemplateNotFound:
        return False


def _url_or_none(endpoint: str, **values):
    try:
        return url_for(endpoint, **values)
    except Exception:
        return None


def _account_url(ticket: Ticket) -> str | None:
    if not ticket.requester_id:
        return None
    return _url_or_none("accounts.user_detail", user_id=ticket.requester_id) or f"/accounts/users/{ticket.requester_id}"


@bp.get("/tickets/<ref>")
@login_required
def detail(ref: str):
    if not current_user.is_staff:
        # Requesters read their tickets in the portal (which answers 404 for what they may not see).
        return redirect(_url_or_none("tickets.portal_detail", ref=ref) or f"/portal/tickets/{ref}")
    ticket = _load(ref)
    live.mark_seen(db.session, current_user.id, ticket.id)  # its unread mark goes
    db.session.commit()
    return _render_detail(ticket)


def _changes_since(ticket: Ticket, seen_event: int | None) -> list[TicketEvent]:
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    if seen_event:
        stmt = stmt.where(TicketEvent.id > seen_event)
    return list(db.session.scalars(stmt))


def _conflict(ticket_id: int, form_name: str, form, seen_event: int | None):
    """Re-render the page with what the agent typed, a clear message and what changed meanwhile."""
    db.session.rollback()
    ticket = db.session.get(Ticket, ticket_id)
    db.session.refresh(ticket)
    flash(_("保存できませんでした: このチケットはあなたが開いた後に他の担当者が更新しました。"
            "下の「その間の変更」を確認してから、もう一度保存してください。入力した内容はそのまま残っています。"), "error")
    return _render_detail(ticket, status=409, changes=_changes_since(ticket, seen_event), **{form_name: form})


@bp.post("/tickets/<ref>/reply")
@staff_required
def reply(ref: str):
    ticket = _load(ref)
    form = forms.ReplyForm()
    _fill_choices(ticket, reply=form)
    if request.form.get("action") == "insert_macro":
        macro = db.session.get(Macro, int(form.macro.data)) if (form.macro.data or "").isdigit() else None
        if macro is None or not macro.active:
            form.macro.errors = [_("挿入するマクロを選んでください。")]
            return _render_detail(ticket, status=400, reply=form)
        text = macros.render(macro.body, ticket, current_user.name)
        form.body.data = ((form.body.data or "").rstrip() + "\n\n" + text).strip()
        if macro.set_status and not form.status_after.data:
            form.status_after.data = macro.set_status
        form.body.errors = []
        service.touch_presence(ticket.id, current_user.id, current_user.name, "replying")
        category = db.session.get(Category, macro.set_category_id) if macro.set_category_id else None
        return _render_detail(ticket, reply=form, macro_category=category)
    if not form.validate():
        return _render_detail(ticket, status=400, reply=form)
    public = form.visibility.data == "public"
    macro_id = int(form.macro.data) if (form.macro.data or "").isdigit() else None
    macro = db.session.get(Macro, macro_id) if macro_id else None
    # A macro's category applies only when the agent kept it (its status comes as status_after).
    category = None
    if macro is not None and macro.set_category_id and request.form.get("apply_category") == "1":
        category = db.session.get(Category, macro.set_category_id).code
    try:
        service.agent_reply(db.session, ticket.id, form.body.data, _actor(), public=public,
                            expected_version=form.version.data, minutes=form.minutes.data,
                            category=category, status_after=form.status_after.data or None)
    except (service.VersionConflict, StaleDataError):
        return _conflict(ticket.id, "reply", form, form.seen_event.data)
    except service.TicketError as exc:
        form.body.errors = list(form.body.errors) + [str(exc)]
        return _render_detail(db.session.get(Ticket, ticket.id), status=400, reply=form)
    except timelog.TimeLogError as exc:
        form.minutes.errors = [str(exc)]
        return _render_detail(db.session.get(Ticket, ticket.id), status=400, reply=form)
    flash(_("お客様への返信を送信しました。") if public else _("内部メモを保存しました。"), "success")
    return redirect(url_for("tickets.detail", ref=ticket.ref) + "#timeline")


@bp.app_template_global("ticket_minutes")
def ticket_minutes_global(ticket) -> int:
    """Minutes logged on the ticket (time tracking), for the ticket page."""
    return timelog.ticket_minutes(db.session, ticket.id)


def _page_again(name: str) -> Callable:
    """The ticket page again (400) with the refused form `name` as posted (for shows_refusals)."""
    return lambda form, ref: _render_detail(_load(ref), status=400, **{name: form})


@bp.post("/tickets/<ref>/fields")
@staff_required
@shows_refusals(service.TicketError, form=forms.FieldsForm, field="status", page=_page_again("fields"))
def update(ref: str):
    ticket = _load(ref)
    form = forms.FieldsForm()
    _fill_choices(ticket, fields=form)
    if not form.validate():
        return _render_detail(ticket, status=400, fields=form)
    try:
        service.update_fields(db.session, ticket.id, _actor(), expected_version=form.version.data,
                              priority=form.priority.data, category=form.category.data or "",
                              assignee_id=int(form.assignee.data) if form.assignee.data else None,
                              status=form.status.data)
    except (service.VersionConflict, StaleDataError):
        return _conflict(ticket.id, "fields", form, form.seen_event.data)
    flash(_("チケットを更新しました。"), "success")
    return redirect(url_for("tickets.detail", ref=ticket.ref))


@bp.post("/tickets/<ref>/escalate")
@staff_required
@shows_refusals(service.TicketError, form=forms.EscalateForm, field="tier", page=_page_again("escalate"))
def escalate(ref: str):
    ticket = _load(ref)
    form = forms.EscalateForm()
    if not form.validate():
        return _render_detail(ticket, status=400, escalate=form)
    try:
        service.escalate(db.session, ticket.id, form.tier.data, form.reason.data, _actor(),
                         expected_version=form.version.data)
    except (service.VersionConflict, StaleDataError):
        return _conflict(ticket.id, "escalate", form, form.seen_event.data)
    flash(_("エスカレーションしました。"), "success")
    return redirect(url_for("tickets.detail", ref=ticket.ref))


@bp.post("/tickets/<ref>/tags")
@staff_required
@shows_refusals(service.TicketError, form=forms.TagForm, field="tag", page=_page_again("tag"))
def add_tag(ref: str):
    ticket = _load(ref)
    form = forms.TagForm()
    if not form.validate():
        return _render_detail(ticket, status=400, tag=form)
    service.add_tag(db.session, ticket.id, form.tag.data, _actor())
    return redirect(url_for("tickets.detail", ref=ticket.ref) + "#tags")


@bp.post("/tickets/<ref>/tags/remove")
@staff_required
def remove_tag(ref: str):
    ticket = _load(ref)
    form = forms.RemoveTagForm()
    if form.validate():
        service.remove_tag(db.session, ticket.id, form.tag.data, _actor())
    return redirect(url_for("tickets.detail", ref=ticket.ref) + "#tags")


def _other(ref_text: str) -> Ticket | None:
    other_id = parse_ref(ref_text)
    other = db.session.get(Ticket, other_id) if other_id else None
    return other if other is not None and service.can_see(current_user, other) else None


@bp.post("/tickets/<ref>/merge")
@staff_required
@shows_refusals(service.TicketError, form=forms.MergeForm, field="target", page=_page_again("merge"))
def merge(ref: str):
    ticket = _load(ref)
    form = forms.MergeForm()
    if not form.validate():
        return _render_detail(ticket, status=400, merge=form)
    target = _other(form.target.data)
    if target is None:
        form.target.errors = [_("統合先のチケット %(ref)s が見つかりません。", ref=form.target.data.strip())]
        return _render_detail(ticket, status=400, merge=form)
    warnings = display.merge_warnings(ticket, target)
    if warnings and request.form.get("confirm_different") != "1" and form.version.data == ticket.version:
        form.target.errors = warnings + [_("別の依頼者・組織のチケットに統合する場合は、確認のチェックを入れてください。")]
        return _render_detail(ticket, status=400, merge=form, merge_target=target, merge_needs_confirm=True)
    try:
        service.merge_tickets(db.session, ticket.id, target.id, _actor(), expected_version=form.version.data)
    except (service.VersionConflict, StaleDataError):
        return _conflict(ticket.id, "merge", form, form.seen_event.data)
    flash(_("%(src)s を %(dst)s に統合しました。", src=ticket.ref, dst=target.ref), "success")
    return redirect(url_for("tickets.detail", ref=target.ref))


@bp.get("/tickets/<ref>/merge-preview")
@staff_required
def merge_preview(ref: str):
    """What merging into `target` would do: the target's subject, requester and status, and warnings (JSON)."""
    ticket = _load(ref)
    target = _other(request.args.get("target", "")[:20])
    if target is None:
        return jsonify({"ok": False, "error": _("統合先のチケット %(ref)s が見つかりません。",
                                                ref=request.args.get("target", "")[:20].strip())})
    if target.id == ticket.id:
        return jsonify({"ok": False, "error": _("同じチケットには統合できません。")})
    return jsonify({"ok": True, "target": display.ticket_summary(target),
                    "warnings": display.merge_warnings(ticket, target)})


@bp.get("/tickets/<ref>/macros/<int:macro_id>/preview")
@staff_required
def macro_preview(ref: str, macro_id: int):
    """A macro filled in for this ticket and what it would change (JSON); nothing is saved."""
    ticket = _load(ref)
    macro = db.session.get(Macro, macro_id)
    if macro is None or not macro.active:
        abort(404)
    category = db.session.get(Category, macro.set_category_id) if macro.set_category_id else None
    changes = []
    if macro.set_status and macro.set_status != ticket.status:
        changes.append({"field": "status", "label": _("ステータス"), "value": macro.set_status,
                        "before": str(STATUS_LABELS[ticket.status]), "after": str(STATUS_LABELS[macro.set_status])})
    if category is not None and category.id != ticket.category_id:
        changes.append({"field": "category", "label": _("カテゴリ"), "value": category.code,
                        "before": _category_label(ticket.category) if ticket.category else _("（未分類）"),
                        "after": _category_label(category)})
    return jsonify({"body": macros.render(macro.body, ticket, current_user.name), "changes": changes})


@bp.post("/tickets/<ref>/link")
@staff_required
def link(ref: str):
    ticket = _load(ref)
    form = forms.LinkForm()
    if not form.validate():
        return _render_detail(ticket, status=400, link=form)
    other = _other(form.other.data)
    if other is None:
        form.other.errors = [_("チケット %(ref)s が見つかりません。", ref=form.other.data.strip())]
        return _render_detail(ticket, status=400, link=form)
    try:
        service.link_tickets(db.session, ticket.id, other.id, _actor())
    except service.TicketError as exc:
        db.session.rollback()
        form.other.errors = [str(exc)]
        return _render_detail(ticket, status=400, link=form)
    flash(_("%(ref)s と関連付けました。", ref=other.ref), "success")
    return redirect(url_for("tickets.detail", ref=ticket.ref) + "#related")


@bp.post("/tickets/<ref>/articles/unlink")
@staff_required
def unlink_article(ref: str):
    ticket = _load(ref)
    form = forms.RemoveTagForm()  # one hidden value + CSRF
    if form.validate():
        service.unlink_article(db.session, ticket.id, form.tag.data, _actor())
    return redirect(url_for("tickets.detail", ref=ticket.ref) + "#articles")


@bp.post("/tickets/<ref>/presence")
@staff_required
def presence(ref: str):
    """Collision hint: record this agent as viewing/replying; answer who else is here."""
    ticket = _load(ref)
    payload = request.get_json(silent=True) or {}
    mode = "replying" if payload.get("mode") == "replying" else "viewing"
    service.touch_presence(ticket.id, current_user.id, current_user.name, mode)
    db.session.expire(ticket)
    return jsonify({"ref": ticket.ref, "version": db.session.get(Ticket, ticket.id).version,
                    "others": service.presence(ticket.id, exclude_user_id=current_user.id)})


# --- macros admin ---------------------------------------------------------------------------

def _macro_choices(form: forms.MacroForm) -> None:
    form.set_status.choices = [("", _("（変更しない）"))] + forms.status_choices()
    form.set_category.choices = [("", _("（変更しない）"))] + [(c.code, _category_label(c)) for c in _categories()]


@bp.route("/agent/macros", methods=["GET", "POST"])
@admin_required
def macro_list():
    form = forms.MacroForm()
    _macro_choices(form)
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                macros.save_macro(db.session, _actor(), title=form.title.data, body=form.body.data,
                                  set_status=form.set_status.data or None, set_category=form.set_category.data or None,
                                  active=form.active.data)
                flash(_("マクロを作成しました。"), "success")
                return redirect(url_for("tickets.macro_list"))
            except macros.MacroError as exc:
                db.session.rollback()
                for name, message in exc.field_errors.items():
                    getattr(form, name).errors = [message]
        status = 400
    rows = db.session.scalars(select(Macro).order_by(Macro.active.desc(), Macro.title)).all()
    categories = {c.id: c for c in _categories()}
    return render_template("tickets/macros.html", form=form, macros=rows, categories=categories,
                           delete_form=forms.DeleteForm(), category_label=_category_label), status


@bp.route("/agent/macros/<int:macro_id>", methods=["GET", "POST"])
@admin_required
def macro_edit(macro_id: int):
    macro = db.session.get(Macro, macro_id) or abort(404)
    category = db.session.get(Category, macro.set_category_id) if macro.set_category_id else None
    form = forms.MacroForm(obj=None if request.method == "POST" else macro,
                           set_category=category.code if category else "")
    _macro_choices(form)
    if request.method == "GET":
        form.set_status.data = macro.set_status or ""
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                macros.save_macro(db.session, _actor(), macro_id=macro.id, title=form.title.data,
                                  body=form.body.data, set_status=form.set_status.data or None,
                                  set_category=form.set_category.data or None, active=form.active.data)
                flash(_("マクロを更新しました。"), "success")
                return redirect(url_for("tickets.macro_list"))
            except macros.MacroError as exc:
                db.session.rollback()
                for name, message in exc.field_errors.items():
                    getattr(form, name).errors = [message]
        status = 400
    return render_template("tickets/macro_edit.html", form=form, macro=macro), status


@bp.post("/agent/macros/<int:macro_id>/delete")
@admin_required
def macro_delete(macro_id: int):
    form = forms.DeleteForm()
    if not form.validate():
        abort(400)
    try:
        macros.delete_macro(db.session, _actor(), macro_id)
    except service.TicketError:
        abort(404)
    flash(_("マクロを無効にしました。"), "success")
    return redirect(url_for("tickets.macro_list"))


# Custom fields (admin page, ticket page edit, queue CSV) and split add their routes to the same blueprint.
from helpdesk.tickets import custom_field_views, split  # noqa: E402,F401
