"""The /api/v1 operations: thin adapters between JSON and the domain services."""
from __future__ import annotations

import re

from flask import current_app, g, request, url_for
from sqlalchemy import func, select

from helpdesk import audit
from helpdesk.accounts.models import Organisation, User
from helpdesk.api import schemas as S
from helpdesk.api import service
from helpdesk.api.framework import ApiError, Param, Reply, actor, current_user_, operation, unknown_reference
from helpdesk.common import to_tokyo
from helpdesk.extensions import db
from helpdesk.routing import external_url
from helpdesk.text import clean_input
from helpdesk.tickets import queue, requesters
from helpdesk.tickets import service as tickets
from helpdesk.tickets import custom_fields as cf
from helpdesk.tickets import timelog
from helpdesk.tickets.models import Ticket, TicketArticle, parse_ref
from helpdesk.api.help import file_help_request
from helpdesk.manuals.service import get_kb
from helpdesk.tickets import creation_limit

TICKETS, ORGS, USERS, ARTICLES, HELP = "tickets", "organisations", "users", "articles", "help"
_ERR_READ = (400, 401, 403, 429)
_ERR_ONE = (401, 403, 404, 429)
_ERR_WRITE = (400, 401, 403, 404, 413, 415, 422, 429)


# --- serialisation -----------------------------------------------------------------------------

def _org_ref(org: Organisation | None) -> S.OrgRef | None:
    return S.OrgRef(code=org.code, name=org.name, kind=org.kind) if org is not None else None


def _user_ref(user: User | None) -> S.UserRef | None:
    return S.UserRef(id=user.id, email=user.email, name=user.name) if user is not None else None


_REF_PLACEHOLDER = "HD-000000"


def _ticket_url(ticket: Ticket) -> str:
    """The ticket's page for the token's user (built once per request, then filled in per ticket)."""
    template = g.get("api_ticket_url")
    if template is None:
        endpoint = "tickets.detail" if current_user_().is_staff else "tickets.portal_detail"
        template = external_url(endpoint, ref=_REF_PLACEHOLDER)  # BASE_URL, never the request's Host
        g.api_ticket_url = template
    return template.replace(_REF_PLACEHOLDER, ticket.ref)


def _summary_fields(t: Ticket) -> dict:
    return dict(ref=t.ref, subject=t.subject, status=t.status, priority=t.priority,
                category=t.category.code if t.category else None, channel=t.channel, tier=t.tier, role=t.role,
                organisation=_org_ref(t.organisation), requester=_user_ref(t.requester),
                assignee=_user_ref(t.assignee), sla_state=t.sla_state,
                resolution_due_at=to_tokyo(t.resolution_due_at), created_at=to_tokyo(t.created_at),
                updated_at=to_tokyo(t.updated_at), version=t.version, url=_ticket_url(t))


def ticket_out(t: Ticket, *, new: bool = False) -> S.Ticket:
    articles = [] if new else db.session.scalars(select(TicketArticle.slug).where(TicketArticle.ticket_id == t.id)
                                                 .order_by(TicketArticle.slug)).all()
    return S.Ticket(**_summary_fields(t), body=t.body or "", tags=t.tag_names, context=t.context,
                    first_response_due_at=to_tokyo(t.first_response_due_at),
                    first_response_at=to_tokyo(t.first_response_at), resolved_at=to_tokyo(t.resolved_at),
                    closed_at=to_tokyo(t.closed_at), csat_score=t.csat_score, articles=list(articles),
                    custom_fields=_custom_out(t))


def _custom_out(t: Ticket) -> dict:
    """Values of the fields of the ticket's category (null when empty) and of any other field holding one."""
    values = cf.values_of(db.session, [t.id])[t.id]
    return {f.key: cf.json_value(f, values.get(f.key)) for f in cf.all_fields(db.session)
            if (f.active and f.applies_to(t.category_id)) or f.key in values}


def _custom_key(key: str) -> str:
    return f"custom_fields.{key}"


def _custom_in(raw: dict | None, category: str | None) -> dict:
    """Checked custom field values of a new ticket; 400 with a message per field otherwise."""
    category_id = tickets.category_by_code(db.session, category).id if category else None
    fields = cf.fields_for(db.session, category_id)
    raw = dict(raw or {})
    known = {f.key for f in fields}
    errors = {_custom_key(k): [f"項目「{k}」はありません（このカテゴリのチケットでは使えません）。"]
              for k in raw if k not in known}
    try:
        values = cf.check_values(fields, raw, error_key=_custom_key)
    except cf.CustomFieldError as exc:
        errors.update({k: [v] for k, v in exc.field_errors.items()})
        values = {}
    if errors:
        raise ApiError(400, "validation", "入力内容に誤りがあります。errors の各項目を確認してください。", errors)
    return values


def _etag(t: Ticket) -> dict[str, str]:
    return {"ETag": f'"{t.version}"'}


def _limit(default: int = 50) -> int:
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ApiError(400, "validation", "limit は1〜100の整数で指定してください。",
                       {"limit": ["1〜100の整数で指定してください。"]})
    return int(raw)


MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


def _id_cursor() -> int | None:
    raw = request.args.get("cursor")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_ID:
        raise ApiError(400, "validation", "cursor が正しくありません。",
                       {"cursor": ["前の応答の next_cursor をそのまま指定してください。"]})
    return int(raw)


def _ticket_or_404(ref: str) -> Ticket:
    ticket_id = parse_ref(ref)
    try:
        if ticket_id is None or ticket_id > MAX_ID:
            raise tickets.NotFound(ref)
        return tickets.get_visible(db.session, current_user_(), ticket_id)
    except tickets.NotFound:
        raise ApiError(404, "not-found", f"チケット「{ref[:20]}」は見つからないか、参照する権限がありません。")


def _creation_limit(user: User, act) -> None:
    """Per-account ticket creation limit (tickets/creation_limit.py): 429 with Retry-After, nothing written."""
    refusal = creation_limit.enforce(db.session, creation_limit.bucket_for(user), str(user.id), act, "api")
    if refusal is not None:
        raise ApiError(429, "too-many-tickets", refusal.detail(), headers={"Retry-After": str(refusal.retry_after)})


def _require_staff(what: str) -> None:
    if not current_user_().is_staff:
        raise ApiError(403, "staff-only", f"{what}はヘルプデスク担当者に紐づくトークンだけが行えます。")


# --- tickets -----------------------------------------------------------------------------------

_LIST_PARAMS = [
    Param("status", {"type": "array", "items": {"type": "string", "enum": list(S.Status.__args__) + ["active"]}},
          "Statuses (repeat or comma-separate); `active` = every open status", explode=True),
    Param("priority", {"type": "array", "items": {"type": "string", "enum": list(S.Priority.__args__)}},
          explode=True),
    Param("role", {"type": "array", "items": {"type": "string", "enum": list(S.OrgKind.__args__)}}, explode=True),
    Param("category", {"type": "array", "items": {"type": "string", "enum": list(S.CATEGORY_CODES)}},
          explode=True),
    Param("tier", {"type": "array", "items": {"type": "string", "enum": list(S.Tier.__args__)}}, explode=True),
    Param("sla", {"type": "array", "items": {"type": "string", "enum": ["ok", "at_risk", "breached"]}},
          explode=True),
    Param("assignee", {"type": "string", "pattern": r"^(me|none|[0-9]{1,9})$"}, "`me`, `none` or a user id"),
    Param("organisation", {"type": "string", "maxLength": 32}, "Organisation code"),
    Param("created_from", {"type": "string", "format": "date"}, "Received on or after (Asia/Tokyo date)"),
    Param("created_to", {"type": "string", "format": "date"}, "Received on or before (Asia/Tokyo date)"),
    Param("tags", {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 10}, explode=True),
    Param("q", {"type": "string", "maxLength": 200}, "Free-text search (Japanese-aware)"),
    Param("sort", {"type": "string", "enum": list(queue.SORTS)}),
    Param("cursor", {"type": "string", "maxLength": 500}, "`next_cursor` of the previous page"),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
]


@operation("GET", "/tickets", summary="List tickets (queue filters, keyset pagination)", tag=TICKETS,
           params=_LIST_PARAMS, responses={200: (S.TicketPage, "One page of tickets")}, errors=_ERR_READ)
def list_tickets():
    """Tickets the token's user may see, filtered like the agent queue, newest first by default.

    Custom fields filter as `cf_<key>=value` (one per field; keys, types and choices in the `CustomFields`
    schema): exact match after the field's own parsing; a checkbox takes `1` or `0`."""
    limit = _limit()
    assignee = request.args.get("assignee", "")
    if assignee.isdigit() and int(assignee) > MAX_ID:
        raise ApiError(400, "validation", "assignee が正しくありません。", {"assignee": ["利用者IDが大きすぎます。"]})
    try:
        filters = queue.parse_filters(request.args)
        page = queue.query_tickets(db.session, current_user_(), filters, cursor=request.args.get("cursor") or None,
                                   limit=limit)
    except queue.FilterError as exc:
        raise ApiError(400, "validation", "検索条件に誤りがあります。", {k: [v] for k, v in exc.field_errors.items()})
    items = [S.TicketSummary(**_summary_fields(t)) for t in page.items]
    return Reply(200, S.TicketPage(items=items, next_cursor=page.next_cursor))


@operation("POST", "/tickets", summary="Create a ticket", tag=TICKETS, scope="tickets:write", body=S.TicketCreate,
           responses={201: (S.Ticket, "The new ticket")}, errors=_ERR_WRITE, idempotent=True)
def create_ticket(payload: S.TicketCreate):
    """Create a ticket. A requester's token files for its own user and organisation; a staff token may name
    the requester (`requester_email`) and/or organisation (`organisation_code`). Send `Idempotency-Key` so a
    retried request never creates a second ticket."""
    user = current_user_()
    try:
        filer = requesters.resolve_filer(db.session, user, requester_email=payload.requester_email,
                                         organisation_code=payload.organisation_code,
                                         also_named=("channel",) if payload.channel != "api" else ())
    except requesters.StaffOnly as exc:
        raise ApiError(403, "staff-only", "依頼者・組織・受付チャネルの指定はヘルプデスク担当者のトークンだけが行えます。",
                       {f: ["担当者のトークンだけが指定できます。"] for f in exc.fields})
    except requesters.UnknownReference as exc:
        raise unknown_reference(exc)
    requester_id, organisation_id = filer.requester_id, filer.organisation_id
    custom_values = _custom_in(payload.custom_fields, payload.category)
    act = actor()
    _creation_limit(user, act)
    ticket = tickets.create_ticket(db.session, actor=act, subject=payload.subject, body=payload.body,
                                   channel=payload.channel, requester_id=requester_id,
                                   organisation_id=organisation_id, category=payload.category,
                                   priority=payload.priority, tags=payload.tags, commit=False)
    cf.set_initial_values(db.session, ticket, custom_values)
    audit.record(db.session, act, "api.ticket_create", "ticket", ticket.ref,
                 {"channel": payload.channel, "requester_id": requester_id, "organisation_id": organisation_id})
    location = url_for("api.get_ticket", ref=ticket.ref)
    return Reply(201, ticket_out(ticket, new=True), {"Location": location, **_etag(ticket)})


@operation("GET", "/tickets/<ref>", summary="Get one ticket", tag=TICKETS,
           params=[Param("ref", {"type": "string", "pattern": "^HD-[0-9]{6,12}$"}, "Ticket reference",
                         location="path", required=True)],
           responses={200: (S.Ticket, "The ticket (ETag = its version)")}, errors=_ERR_ONE)
def get_ticket(ref: str):
    ticket = _ticket_or_404(ref)
    return Reply(200, ticket_out(ticket), _etag(ticket))


_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


@operation("PATCH", "/tickets/<ref>", summary="Update status / priority / category / assignee", tag=TICKETS,
           scope="tickets:write", body=S.TicketUpdate,
           params=[Param("ref", {"type": "string", "pattern": "^HD-[0-9]{6,12}$"}, location="path", required=True),
                   Param("If-Match", {"type": "string", "maxLength": 20}, 'The version, e.g. "3"',
                         location="header")],
           responses={200: (S.Ticket, "The updated ticket")}, errors=_ERR_WRITE + (409, 412))
def update_ticket(ref: str, payload: S.TicketUpdate):
    """Optimistic locking: send the version you read as `version` (409 on mismatch) or as `If-Match`
    (412 on mismatch). Staff tokens only."""
    ticket = _ticket_or_404(ref)
    _require_staff("チケットの更新")
    changes = payload.model_dump(exclude_unset=True, exclude={"version"})
    if not any(v not in (None, False) for v in changes.values()):
        raise ApiError(400, "validation",
                       "変更する項目（status, priority, category, assignee, unassign, custom_fields）を指定してください。",
                       {"body": ["変更する項目がありません。"]})
    if_match = request.headers.get("If-Match")
    expected, status_on_conflict = payload.version, 409
    if if_match is not None:
        m = _IF_MATCH.match(if_match)
        if not m:
            raise ApiError(400, "validation", 'If-Match はバージョン番号（例: "3"）で指定してください。',
                           {"If-Match": ['例: "3"']})
        expected, status_on_conflict = int(m.group(1)), 412
    act = actor()
    before = {"status": ticket.status, "priority": ticket.priority,
              "category": ticket.category.code if ticket.category else None,
              "assignee": ticket.assignee.email if ticket.assignee else None}
    try:
        tickets.update_fields(db.session, ticket.id, act, expected_version=expected, priority=payload.priority,
                              category=payload.category, assignee_id=None if payload.unassign else "keep",
                              assignee_email=None if payload.unassign else (payload.assignee or None),
                              status=payload.status, commit=False)
    except tickets.VersionConflict as exc:
        raise ApiError(status_on_conflict, "version-conflict",
                       f"このチケットは更新されています（送信されたバージョン {expected}、現在 {exc.ticket.version}）。"
                       "最新の内容を取得してからもう一度送信してください。", headers=_etag(exc.ticket))
    except requesters.UnknownReference as exc:
        raise unknown_reference(exc)
    if payload.custom_fields:
        try:
            cf.update_ticket_values(db.session, ticket.id, payload.custom_fields, act, error_key=_custom_key,
                                    commit=False)
        except cf.CustomFieldError as exc:
            raise ApiError(400, "validation", "入力内容に誤りがあります。errors の各項目を確認してください。",
                           {k: [v] for k, v in exc.field_errors.items()})
    audit.record(db.session, act, "api.ticket_update", "ticket", ticket.ref, {"before": before, "changes": changes})
    return Reply(200, ticket_out(ticket), _etag(ticket))


@operation("POST", "/tickets/<ref>/replies", summary="Add a public reply or an internal note", tag=TICKETS,
           scope="tickets:write", body=S.ReplyCreate,
           params=[Param("ref", {"type": "string", "pattern": "^HD-[0-9]{6,12}$"}, location="path", required=True)],
           responses={201: (S.Reply, "The reply")}, errors=_ERR_WRITE + (409,), idempotent=True)
def add_reply(ref: str, payload: S.ReplyCreate):
    """`public: false` writes an internal note (staff tokens only)."""
    ticket = _ticket_or_404(ref)
    user = current_user_()
    if not payload.public and not user.is_staff:
        raise ApiError(403, "staff-only", "内部メモはヘルプデスク担当者のトークンだけが書けます。",
                       {"public": ["担当者以外は true（公開の返信）だけが使えます。"]})
    act = actor()
    comment = tickets.add_comment(db.session, ticket.id, payload.body, act, public=payload.public, via="api",
                                  expected_version=payload.version, commit=False)
    if payload.minutes is not None:
        if not user.is_staff:
            raise ApiError(403, "staff-only", "作業時間はヘルプデスク担当者のトークンだけが記録できます。",
                           {"minutes": ["担当者以外は指定できません。"]})
        timelog.log_minutes(db.session, comment, payload.minutes, act)
    audit.record(db.session, act, "api.reply" if payload.public else "api.note", "ticket", ticket.ref,
                 {"comment_id": comment.id})
    out = S.Reply(id=comment.id, ticket_ref=ticket.ref, body=comment.body, public=comment.is_public, via=comment.via,
                  author=_user_ref(user), created_at=to_tokyo(comment.created_at), minutes=comment.minutes)
    return Reply(201, out, {"Location": url_for("api.get_ticket", ref=ticket.ref)})


# --- organisations and users --------------------------------------------------------------------

def _org_out(org: Organisation, counts: dict) -> S.Organisation:
    return S.Organisation(id=org.id, code=org.code, name=org.name, kind=org.kind, prefecture=org.prefecture,
                          parent_code=org.parent.code if org.parent else None,
                          activation=S.Activation(**counts.get(org.id, {"invited": 0, "activated": 0,
                                                                        "disabled": 0, "locked": 0})))


@operation("GET", "/organisations", summary="Search organisations (code, name)", tag=ORGS,
           params=[Param("code", {"type": "string", "maxLength": 32}, "Exact organisation code"),
                   Param("q", {"type": "string", "maxLength": 100}, "Part of the name or code"),
                   Param("kind", {"type": "string", "enum": list(S.OrgKind.__args__)}),
                   Param("cursor", {"type": "string", "pattern": "^[0-9]{1,9}$"}),
                   Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50})],
           responses={200: (S.OrganisationPage, "Organisations with their users' activation state")},
           errors=_ERR_READ)
def list_organisations():
    limit, after = _limit(), _id_cursor()
    stmt = select(Organisation)
    scope = service.visible_org_clause(current_user_())
    if scope is not None:
        stmt = stmt.where(scope)
    code = clean_input(request.args.get("code"), 32)
    if code:
        stmt = stmt.where(Organisation.code == code)
    q = clean_input(request.args.get("q"), 100)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where((Organisation.name.like(like, escape="\\")) | (Organisation.code.like(like, escape="\\")))
    kind = request.args.get("kind")
    if kind:
        if kind not in S.OrgKind.__args__:
            raise ApiError(400, "validation", "kind が正しくありません。",
                           {"kind": [f"選べる値: {', '.join(S.OrgKind.__args__)}"]})
        stmt = stmt.where(Organisation.kind == kind)
    if after:
        stmt = stmt.where(Organisation.id > after)
    orgs = list(db.session.scalars(stmt.order_by(Organisation.id).limit(limit + 1)))
    more, orgs = len(orgs) > limit, orgs[:limit]
    counts = service.activation_counts(db.session, [o.id for o in orgs])
    return Reply(200, S.OrganisationPage(items=[_org_out(o, counts) for o in orgs],
                                         next_cursor=str(orgs[-1].id) if more else None))


@operation("GET", "/organisations/<code>", summary="Get one organisation by code", tag=ORGS,
           params=[Param("code", {"type": "string", "maxLength": 32}, location="path", required=True)],
           responses={200: (S.Organisation, "The organisation")}, errors=_ERR_ONE)
def get_organisation(code: str):
    stmt = select(Organisation).where(Organisation.code == code)
    scope = service.visible_org_clause(current_user_())
    org = db.session.scalar(stmt if scope is None else stmt.where(scope))
    if org is None:
        raise ApiError(404, "not-found", f"組織「{code[:32]}」は見つからないか、参照する権限がありません。")
    return Reply(200, _org_out(org, service.activation_counts(db.session, [org.id])))


def _user_out(u: User) -> S.User:
    return S.User(id=u.id, email=u.email, name=u.name, phone=u.phone, organisation=_org_ref(u.organisation),
                  roles=sorted(u.role_set), state=u.state, locked=u.is_locked(),
                  activated_at=to_tokyo(u.activated_at), last_login_at=to_tokyo(u.last_login_at),
                  needs_review=bool(u.needs_review))


@operation("GET", "/users", summary="Search users (e-mail, phone, organisation)", tag=USERS,
           params=[Param("email", {"type": "string", "maxLength": 254}, "Exact login id (case-insensitive)"),
                   Param("phone", {"type": "string", "maxLength": 40}, "Phone number; digits are compared"),
                   Param("organisation", {"type": "string", "maxLength": 32}, "Organisation code"),
                   Param("state", {"type": "string", "enum": ["invited", "activated", "disabled"]}),
                   Param("cursor", {"type": "string", "pattern": "^[0-9]{1,9}$"}),
                   Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50})],
           responses={200: (S.UserPage, "Users with their activation state")}, errors=_ERR_READ)
def list_users():
    """For a CTI pop-up: `GET /users?phone=03-1234-5678` finds the caller's account."""
    limit, after = _limit(), _id_cursor()
    stmt = select(User)
    scope = service.visible_user_clause(current_user_())
    if scope is not None:
        stmt = stmt.where(scope)
    email = clean_input(request.args.get("email"), 254).lower()
    if email:
        stmt = stmt.where(User.email == email)
    phone = request.args.get("phone")
    if phone:
        digits = service.phone_digits(phone)
        if len(digits) < 4:
            raise ApiError(400, "validation", "電話番号は4桁以上の数字で指定してください。",
                           {"phone": ["4桁以上の数字で指定してください。"]})
        stored = func.replace(func.replace(func.replace(func.replace(User.phone, "-", ""), " ", ""), "(", ""), ")", "")
        stmt = stmt.where(stored == digits)
    org_code = clean_input(request.args.get("organisation"), 32)
    if org_code:
        stmt = stmt.where(User.organisation_id.in_(select(Organisation.id).where(Organisation.code == org_code)))
    state = request.args.get("state")
    if state:
        if state not in ("invited", "activated", "disabled"):
            raise ApiError(400, "validation", "state が正しくありません。",
                           {"state": ["選べる値: invited, activated, disabled"]})
        stmt = stmt.where(User.state == state)
    if after:
        stmt = stmt.where(User.id > after)
    users = list(db.session.scalars(stmt.order_by(User.id).limit(limit + 1)))
    more, users = len(users) > limit, users[:limit]
    return Reply(200, S.UserPage(items=[_user_out(u) for u in users],
                                 next_cursor=str(users[-1].id) if more else None))


@operation("GET", "/users/<int:user_id>", summary="Get one user", tag=USERS,
           params=[Param("user_id", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, location="path",
                         required=True)],
           responses={200: (S.User, "The user")}, errors=_ERR_ONE)
def get_user(user_id: int):
    if user_id > MAX_ID:
        raise ApiError(404, "not-found", "利用者が見つかりません。")
    stmt = select(User).where(User.id == user_id)
    scope = service.visible_user_clause(current_user_())
    user = db.session.scalar(stmt if scope is None else stmt.where(scope))
    if user is None:
        raise ApiError(404, "not-found", "利用者が見つからないか、参照する権限がありません。")
    return Reply(200, _user_out(user))


# --- manual articles ---------------------------------------------------------------------------

def _kb():
    return get_kb(current_app.config["MANUALS_DIR"])


def _article_url(role: str, slug: str, lang: str) -> str:
    return external_url("manuals.article", role=role, slug=slug, lang=lang)


def _hit(h) -> S.ArticleHit:
    return S.ArticleHit(slug=h.slug, title=h.title, role=h.role, lang=h.lang, score=round(float(h.score), 4),
                        excerpt=h.excerpt, url=_article_url(h.role, h.slug, h.lang))


def _role_arg() -> str | None:
    role = request.args.get("role")
    if role and role not in S.ArticleRole.__args__:
        raise ApiError(400, "validation", "role が正しくありません。",
                       {"role": [f"選べる値: {', '.join(S.ArticleRole.__args__)}"]})
    user = current_user_()
    if not user.is_staff and user.org_kind in ("municipality", "clinic", "wholesaler"):
        return user.org_kind  # a requester gets their own role's articles (+ common)
    return None if role in (None, "", "common") else role


def _lang_arg() -> str | None:
    lang = request.args.get("lang")
    if lang and lang not in ("ja", "en"):
        raise ApiError(400, "validation", "lang は ja か en です。", {"lang": ["ja または en"]})
    return lang or None


_ART_PARAMS = [Param("role", {"type": "string", "enum": list(S.ArticleRole.__args__)}),
               Param("lang", {"type": "string", "enum": ["ja", "en"]}),
               Param("limit", {"type": "integer", "minimum": 1, "maximum": 20, "default": 5})]


def _art_limit(default: int) -> int:
    raw = request.args.get("limit")
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 20:
        raise ApiError(400, "validation", "limit は1〜20の整数で指定してください。", {"limit": ["1〜20の整数"]})
    return int(raw)


@operation("GET", "/articles", summary="Search the manuals", tag=ARTICLES,
           params=[Param("q", {"type": "string", "minLength": 1, "maxLength": 200}, "Search words", required=True)]
           + _ART_PARAMS, responses={200: (S.ArticleHits, "Best matches first")}, errors=_ERR_READ)
def search_articles():
    q = clean_input(request.args.get("q"), 200)
    if not q:
        raise ApiError(400, "validation", "検索語 q を指定してください。", {"q": ["必須項目です。"]})
    role, lang, k = _role_arg(), _lang_arg(), _art_limit(10)
    hits = _kb().search(q, role=role, lang=lang, k=k)
    return Reply(200, S.ArticleHits(items=[_hit(h) for h in hits]))


@operation("GET", "/articles/suggest", summary="Suggest articles for a ticket text", tag=ARTICLES,
           params=[Param("text", {"type": "string", "minLength": 1, "maxLength": 4000}, "The ticket's text",
                         required=True)] + _ART_PARAMS,
           responses={200: (S.ArticleHits, "Suggestions, best first")}, errors=_ERR_READ)
def suggest_articles():
    text = clean_input(request.args.get("text"), 4000)
    if not text:
        raise ApiError(400, "validation", "本文 text を指定してください。", {"text": ["必須項目です。"]})
    role, lang, k = _role_arg(), _lang_arg(), _art_limit(5)
    hits = _kb().suggest(text, role=role, k=k, lang=lang)
    return Reply(200, S.ArticleHits(items=[_hit(h) for h in hits]))


@operation("GET", "/articles/<slug>", summary="Get one manual article", tag=ARTICLES,
           params=[Param("slug", {"type": "string", "maxLength": 120}, location="path", required=True),
                   Param("lang", {"type": "string", "enum": ["ja", "en"]})],
           responses={200: (S.Article, "The article (Markdown body)")}, errors=_ERR_ONE + (400,))
def get_article(slug: str):
    lang = _lang_arg()
    translations = _kb().translations(slug)
    if not translations:
        raise ApiError(404, "not-found", f"記事「{slug[:120]}」は見つかりません。")
    art = translations.get(lang or "ja") or next(iter(translations.values()))
    return Reply(200, S.Article(slug=art.slug, title=art.title, role=art.role, lang=art.lang, version=art.version,
                                updated=art.updated, tags=list(art.tags), summary=art.summary or "",
                                category=art.category, related=list(art.related), body_markdown=art.body,
                                url=_article_url(art.role, art.slug, art.lang), translations=sorted(translations)))


# --- the in-app help button -------------------------------------------------------------------

@operation("POST", "/help-requests", summary="File a ticket from the supported system's Help button", tag=HELP,
           scope="tickets:write", body=S.HelpRequestCreate,
           responses={201: (S.HelpRequestResult, "The ticket and suggested articles")}, errors=_ERR_WRITE,
           idempotent=True)
def create_help_request(payload: S.HelpRequestCreate):
    """VDS sends the user's context (login id, organisation, screen, error code, browser, message); the desk
    files a ticket (channel `api`) for that user — or for the organisation when the login id is unknown —
    and answers with its reference and the best manual articles for the user's role."""
    _creation_limit(current_user_(), actor())
    result = file_help_request(db.session, current_user_(), payload, actor(), kb=_kb(), ticket_url=_ticket_url,
                               article_url=_article_url)
    return Reply(201, result, {"Location": url_for("api.get_ticket", ref=result.ticket.ref)})
