"""/api/v1 problems (backlog items) and insights (trends, recurring groups), over the insights domain."""
from __future__ import annotations

import datetime as dt

from flask import request
from sqlalchemy import func, select

from helpdesk.api import schemas as S
from helpdesk.api.framework import ApiError, Param, Reply, actor, current_user_, operation
from helpdesk.common import INSIGHT_ROLES, STAFF_ROLES, to_tokyo
from helpdesk.extensions import db
from helpdesk.insights import service as insights
from helpdesk.insights import trends
from helpdesk.insights.models import PROBLEM_STATUSES, Problem, ProblemTicket, RecurringGroup, RecurringMember
from helpdesk.tickets import service as tickets
from helpdesk.tickets.models import Ticket, format_ref, parse_ref

PROBLEMS, INSIGHTS = "problems", "insights"
MAX_ID = 2**31 - 1


def _require(roles, what: str) -> None:
    if not current_user_().has_role(*roles):
        raise ApiError(403, "role-required", f"{what}は分析担当（プロダクトオーナー・スーパーバイザー・管理者）"
                       "に紐づくトークンだけが使えます。" if roles == INSIGHT_ROLES else
                       f"{what}はヘルプデスク担当者または分析担当に紐づくトークンだけが使えます。")


def _summary_fields(p: Problem, count: int) -> dict:
    return dict(id=p.id, title=p.title, status=p.status, external_ref=p.external_ref, external_url=p.external_url,
                fixed_on=p.fixed_on, ticket_count=int(count), created_at=to_tokyo(p.created_at),
                updated_at=to_tokyo(p.updated_at))


def _int_arg(name: str, low: int, high: int, default: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "validation", f"{name} は{low}〜{high}の整数で指定してください。",
                       {name: [f"{low}〜{high}の整数で指定してください。"]})
    return int(raw)


def _date_arg(name: str) -> dt.date | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "validation", f"{name} は YYYY-MM-DD で指定してください。", {name: ["例: 2026-04-01"]})


@operation("GET", "/problems", summary="List problems (backlog items)", tag=PROBLEMS,
           params=[Param("status", {"type": "string", "enum": list(PROBLEM_STATUSES)}),
                   Param("cursor", {"type": "string", "pattern": "^[0-9]{1,9}$"}, "`next_cursor` of the previous page"),
                   Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50})],
           responses={200: (S.ProblemPage, "Problems, newest first")}, errors=(400, 401, 403, 429))
def list_problems():
    _require(INSIGHT_ROLES, "問題の参照")
    limit = _int_arg("limit", 1, 100, 50)
    after = _int_arg("cursor", 1, MAX_ID)
    status = request.args.get("status")
    if status and status not in PROBLEM_STATUSES:
        raise ApiError(400, "validation", "status が正しくありません。", {"status": [f"選べる値: {', '.join(PROBLEM_STATUSES)}"]})
    counts = (select(ProblemTicket.problem_id, func.count().label("n")).group_by(ProblemTicket.problem_id).subquery())
    stmt = select(Problem, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.problem_id == Problem.id)
    if status:
        stmt = stmt.where(Problem.status == status)
    if after:
        stmt = stmt.where(Problem.id < after)
    rows = db.session.execute(stmt.order_by(Problem.id.desc()).limit(limit + 1)).all()
    more, rows = len(rows) > limit, rows[:limit]
    return Reply(200, S.ProblemPage(items=[S.ProblemSummary(**_summary_fields(p, n)) for p, n in rows],
                                    next_cursor=str(rows[-1][0].id) if more else None))


def _problem_or_404(problem_id: int) -> Problem:
    problem = db.session.get(Problem, problem_id) if problem_id <= MAX_ID else None
    if problem is None:
        raise ApiError(404, "not-found", f"問題 {problem_id} は見つかりません。")
    return problem


@operation("GET", "/problems/<int:problem_id>", summary="Get one problem with its linked tickets", tag=PROBLEMS,
           params=[Param("problem_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, location="path",
                         required=True)],
           responses={200: (S.ProblemItem, "The problem")}, errors=(401, 403, 404, 429))
def get_problem(problem_id: int):
    _require(INSIGHT_ROLES, "問題の参照")
    p = _problem_or_404(problem_id)
    ids = db.session.scalars(select(ProblemTicket.ticket_id).join(Ticket, Ticket.id == ProblemTicket.ticket_id)
                             .where(ProblemTicket.problem_id == p.id)
                             .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(500)).all()
    count = db.session.scalar(select(func.count()).select_from(ProblemTicket).where(ProblemTicket.problem_id == p.id))
    return Reply(200, S.ProblemItem(**_summary_fields(p, count or 0), description=p.description or "",
                                    workaround=p.workaround or "", verified_at=to_tokyo(p.verified_at),
                                    ticket_refs=[format_ref(i) for i in ids]))


@operation("POST", "/problems/<int:problem_id>/tickets", summary="Link a ticket to a problem", tag=PROBLEMS,
           scope="problems:write", body=S.ProblemLinkCreate,
           params=[Param("problem_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, location="path",
                         required=True)],
           responses={201: (S.ProblemLinkResult, "Linked"), 200: (S.ProblemLinkResult, "Was already linked")},
           errors=(400, 401, 403, 404, 413, 415, 422, 429), idempotent=True)
def link_problem_ticket(problem_id: int, payload: S.ProblemLinkCreate):
    """Staff or insights (product owner, supervisor, admin) tokens, like the web UI."""
    _require(STAFF_ROLES | INSIGHT_ROLES, "問題へのチケットの紐づけ")
    problem = _problem_or_404(problem_id)
    ticket_id = parse_ref(payload.ticket_ref)
    try:
        if ticket_id is None or ticket_id > MAX_ID:
            raise tickets.NotFound(payload.ticket_ref)
        user = current_user_()
        if user.has_role(*INSIGHT_ROLES):  # analysts work across organisations, like the web UI
            ticket = db.session.get(Ticket, ticket_id)
            if ticket is None:
                raise tickets.NotFound(payload.ticket_ref)
        else:
            ticket = tickets.get_visible(db.session, user, ticket_id)
    except tickets.NotFound:
        raise ApiError(422, "unknown-reference", "チケットが見つかりません。",
                       {"ticket_ref": [f"チケット「{payload.ticket_ref}」が見つかりません。"]})
    try:
        linked = insights.link_ticket(db.session, problem.id, ticket.id, actor(), source="api")
    except insights.InsightsError as exc:
        raise ApiError(422, "refused", str(exc))
    out = S.ProblemLinkResult(problem_id=problem.id, ticket_ref=ticket.ref, linked=linked)
    return Reply(201 if linked else 200, out)


@operation("GET", "/insights/trends", summary="Ticket volume per period, by category / role / organisation",
           tag=INSIGHTS,
           params=[Param("by", {"type": "string", "enum": ["category", "role", "org", "prefecture", "channel"],
                                "default": "category"}),
                   Param("period", {"type": "string", "enum": ["week", "day"], "default": "week"}),
                   Param("since", {"type": "string", "format": "date"}, "First day (Asia/Tokyo)"),
                   Param("until", {"type": "string", "format": "date"}, "Last day (Asia/Tokyo)")],
           responses={200: (S.TrendSeries, "Counts per period and key")}, errors=(400, 401, 403, 429))
def insight_trends():
    """From the trend rollup the insights jobs keep up to date."""
    _require(INSIGHT_ROLES, "傾向分析")
    by = request.args.get("by") or "category"
    period = request.args.get("period") or "week"
    errors = {}
    if by not in ("category", "role", "org", "prefecture", "channel"):
        errors["by"] = ["選べる値: category, role, org, prefecture, channel"]
    if period not in ("week", "day"):
        errors["period"] = ["選べる値: week, day"]
    if errors:
        raise ApiError(400, "validation", "集計の指定が正しくありません。", errors)
    since, until = _date_arg("since"), _date_arg("until")
    default_since, default_until = trends.default_window(period)
    since, until = since or (until - (default_until - default_since) if until else default_since), until or default_until
    if since > until:
        raise ApiError(400, "validation", "since は until 以前の日付にしてください。", {"since": ["until 以前の日付"]})
    max_days = 400 if period == "day" else 3 * 366
    if (until - since).days > max_days:
        raise ApiError(400, "validation", f"期間は{max_days}日以内にしてください。", {"since": [f"{max_days}日以内"]})
    data = trends.volume(db.session, by, period, since, until)
    return Reply(200, S.TrendSeries(by=by, period=period, periods=[dt.date.fromisoformat(p) for p in data["periods"]],
                                    series=data["series"], totals=data["totals"]))


@operation("GET", "/insights/recurring", summary="Recurring issue groups (largest first)", tag=INSIGHTS,
           params=[Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20})],
           responses={200: (S.RecurringGroups, "Groups from the latest clustering run")}, errors=(400, 401, 403, 429))
def insight_recurring():
    """The groups found by the latest recurring-issue run (`helpdesk insights recurring` computes them afresh)."""
    _require(INSIGHT_ROLES, "繰り返し発生の分析")
    limit = _int_arg("limit", 1, 100, 20)
    groups = insights.list_groups(db.session)[:limit]
    problem_of = insights.group_problem_ids(db.session)
    out = []
    for g in groups:
        ids = db.session.scalars(select(RecurringMember.ticket_id).join(Ticket, Ticket.id == RecurringMember.ticket_id)
                                 .where(RecurringMember.group_id == g.id)
                                 .order_by(Ticket.created_at, Ticket.id).limit(200)).all()
        out.append(S.RecurringGroup(id=g.id, label=g.label, size=g.size, trend=g.trend, top_terms=list(g.top_terms or []),
                                    roles=dict(g.roles or {}), first_seen=to_tokyo(g.first_seen),
                                    last_seen=to_tokyo(g.last_seen), ticket_refs=[format_ref(i) for i in ids],
                                    problem_id=problem_of.get(g.id)))
    return Reply(200, S.RecurringGroups(items=out))
