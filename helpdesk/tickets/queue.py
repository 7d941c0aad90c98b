"""The queue query shared by the agent queue page and the JSON API.

`parse_filters(args)` validates query-string values into `QueueFilters` (raising `FilterError` with a
message per field), `query_tickets(...)` returns one page with keyset pagination (an opaque cursor,
never OFFSET), always scoped with `service.visible_clause(user)`, and `count_tickets(...)` gives a
capped count for the view tabs.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, false, func, literal, or_, select, text, tuple_
from sqlalchemy.orm import defer

from helpdesk.accounts.models import Organisation, User
from helpdesk.common import ORG_KINDS, TOKYO, UTCDateTime, utcnow
from helpdesk.tickets import custom_fields, search
from helpdesk.tickets.models import OPEN_STATUSES, PRIORITIES, STATUSES, TIERS, Category, Ticket, TicketTag
from helpdesk.tickets.service import visible_clause

SORTS = ("-created", "created", "priority", "updated", "due", "relevance")
DEFAULT_SORT = "-created"
MAX_LIMIT = 100
COUNT_CAP = 1000
_FAR_FUTURE = dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc)
_CATEGORY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TAG_MAX = 50

#: Query-string keys that are filters (anything else, e.g. `view` or `cursor`, is not).
FILTER_KEYS = ("status", "priority", "role", "category", "tier", "assignee", "organisation",
               "created_from", "created_to", "tags", "sla", "q", "sort")
SLA_STATES = ("ok", "at_risk", "breached")


class FilterError(ValueError):
    """Bad filter values; `field_errors` maps the query-string key to a message for the user."""

    def __init__(self, field_errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in field_errors.items()))
        self.field_errors = field_errors


@dataclass
class QueueFilters:
    statuses: list[str] = field(default_factory=list)
    priorities: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)
    #: "me", "none" or a user id (as int)
    assignee: str | int | None = None
    organisation: str | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    tags: list[str] = field(default_factory=list)
    #: ok | at_risk | breached (breached also covers a passed resolution due date not yet swept)
    sla: list[str] = field(default_factory=list)
    q: str = ""
    sort: str = DEFAULT_SORT
    #: Custom field conditions (cf_<key>=value), checked against the field's type.
    custom: list = field(default_factory=list)

    @property
    def effective_sort(self) -> str:
        return self.sort

    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self) if f.name != "sort")

    def to_args(self) -> list[tuple[str, str]]:
        """The query-string pairs that give these filters back through parse_filters."""
        pairs: list[tuple[str, str]] = []
        for key, values in (("status", self.statuses), ("priority", self.priorities), ("role", self.roles),
                            ("category", self.categories), ("tier", self.tiers), ("tags", self.tags),
                            ("sla", self.sla)):
            pairs += [(key, v) for v in values]
        if self.assignee is not None:
            pairs.append(("assignee", str(self.assignee)))
        if self.organisation:
            pairs.append(("organisation", self.organisation))
        if self.created_from:
            pairs.append(("created_from", self.created_from.isoformat()))
        if self.created_to:
            pairs.append(("created_to", self.created_to.isoformat()))
        if self.q:
            pairs.append(("q", self.q))
        pairs += [custom_fields.filter_arg(c) for c in self.custom]
        if self.sort != DEFAULT_SORT:
            pairs.append(("sort", self.sort))
        return pairs


@dataclass
class Page:
    items: list[Ticket]
    next_cursor: str | None
    #: Search score per ticket id when the query had `q` (for display and tests).
    scores: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Count:
    value: int
    capped: bool

    def __str__(self) -> str:
        return f"{self.value:,}+" if self.capped else f"{self.value:,}"


def _values(args: Mapping[str, Any], key: str) -> list[str]:
    """All values of `key`: repeated keys (MultiDict), lists, or comma-separated strings."""
    if hasattr(args, "getlist"):
        raw = args.getlist(key)
    else:
        raw = args.get(key)
        raw = [] if raw is None else (list(raw) if isinstance(raw, (list, tuple)) else [raw])
    out: list[str] = []
    for item in raw:
        for part in str(item).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _single(args: Mapping[str, Any], key: str) -> str:
    if key == "q":  # free text: commas are part of it
        raw = args.getlist(key) if hasattr(args, "getlist") else args.get(key)
        if isinstance(raw, (list, tuple)):
            raw = " ".join(str(r) for r in raw)
        return raw.strip() if isinstance(raw, str) else ""
    values = _values(args, key)
    return values[0] if values else ""


def _choice_list(args, key: str, allowed: Sequence[str], errors: dict, label: str) -> list[str]:
    values = _values(args, key)
    if key == "status" and "active" in values:
        values = [v for v in values if v != "active"] + [s for s in OPEN_STATUSES if s not in values]
    bad = [v for v in values if v not in allowed]
    if bad:
        errors[key] = _l("%(label)s「%(value)s」は選べません（%(allowed)s）。", label=label, value=bad[0],
                         allowed=", ".join(allowed))
    return [v for v in values if v in allowed]


def _date(args, key: str, errors: dict, label: str) -> dt.date | None:
    value = _single(args, key)
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors[key] = _l("%(label)sは YYYY-MM-DD の形式で入力してください（例: 2026-04-01）。", label=label)
        return None


def parse_filters(args: Mapping[str, Any]) -> QueueFilters:
    """Validate query-string values into QueueFilters; FilterError lists every bad field."""
    errors: dict[str, str] = {}
    f = QueueFilters()
    f.statuses = _choice_list(args, "status", STATUSES, errors, _l("ステータス"))
    f.priorities = _choice_list(args, "priority", PRIORITIES, errors, _l("優先度"))
    f.roles = _choice_list(args, "role", ORG_KINDS, errors, _l("利用者区分"))
    f.tiers = _choice_list(args, "tier", TIERS, errors, _l("対応段階"))
    f.sla = _choice_list(args, "sla", SLA_STATES, errors, "SLA")
    categories = _values(args, "category")
    bad = [c for c in categories if not _CATEGORY_RE.match(c)]
    if bad:
        errors["category"] = _l("カテゴリ「%(value)s」は選べません。", value=bad[0][:40])
    f.categories = [c for c in categories if _CATEGORY_RE.match(c)]
    assignee = _single(args, "assignee")
    if assignee:
        if assignee in ("me", "none"):
            f.assignee = assignee
        elif assignee.isdigit() and len(assignee) < 12:
            f.assignee = int(assignee)
        else:
            errors["assignee"] = _l("担当者は「me」「none」または利用者IDで指定してください。")
    organisation = _single(args, "organisation")
    if organisation:
        if len(organisation) > 32:
            errors["organisation"] = _l("組織コードは32文字以内で入力してください。")
        else:
            f.organisation = organisation
    f.created_from = _date(args, "created_from", errors, _l("受付日（から）"))
    f.created_to = _date(args, "created_to", errors, _l("受付日（まで）"))
    if f.created_from and f.created_to and f.created_from > f.created_to:
        errors["created_to"] = _l("受付日（まで）は受付日（から）以降の日付にしてください。")
    tags = [search.normalize(t).replace(" ", "-") for t in _values(args, "tags")]
    if any(len(t) > _TAG_MAX for t in tags):
        errors["tags"] = _l("タグは%(n)s文字以内で入力してください。", n=_TAG_MAX)
    f.tags = [t for t in tags if t and len(t) <= _TAG_MAX][:10]
    q = _single(args, "q")
    if len(q) > 200:
        errors["q"] = _l("検索語は200文字以内で入力してください。")
    f.q = q[:200]
    sort = _single(args, "sort") or ("relevance" if f.q else DEFAULT_SORT)
    if sort not in SORTS:
        errors["sort"] = _l("並び順「%(value)s」は選べません。", value=sort[:20])
        sort = DEFAULT_SORT
    if sort == "relevance" and not f.q:
        sort = DEFAULT_SORT
    f.sort = sort
    custom = _custom_pairs(args)
    if custom:
        from helpdesk.extensions import db  # the field definitions: their types decide what a value means

        f.custom, custom_errors = custom_fields.parse_filter_args(db.session, custom)
        errors.update(custom_errors)
    if errors:
        raise FilterError(errors)
    return f


def _custom_pairs(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key in list(args.keys()):
        if isinstance(key, str) and key.startswith(custom_fields.PREFIX):
            values = args.getlist(key) if hasattr(args, "getlist") else [args.get(key)]
            pairs += [(key, str(v)) for v in values if v is not None]
    return pairs


def has_filter_keys(args: Mapping[str, Any]) -> bool:
    """Whether the query string holds any filter (a built-in key or a custom field cf_<key>)."""
    return any(k in args for k in FILTER_KEYS) or bool(_custom_pairs(args))


# --- the query ------------------------------------------------------------------------------

def _tokyo_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=TOKYO).astimezone(dt.timezone.utc)


def _where(session, user: User, filters: QueueFilters) -> list:
    clauses = []
    scope = visible_clause(user)
    if scope is not None:
        clauses.append(scope)
    if filters.statuses:
        clauses.append(Ticket.status.in_(filters.statuses))
    if filters.priorities:
        clauses.append(Ticket.priority.in_(filters.priorities))
    if filters.roles:
        clauses.append(Ticket.role.in_(filters.roles))
    if filters.tiers:
        clauses.append(Ticket.tier.in_(filters.tiers))
    if filters.categories:
        # Resolved to ids first: the planner picks better plans for known values than for a subquery.
        ids = session.scalars(select(Category.id).where(Category.code.in_(filters.categories))).all()
        clauses.append(Ticket.category_id.in_(ids) if ids else false())
    if filters.assignee == "me":
        clauses.append(Ticket.assignee_id == user.id)
    elif filters.assignee == "none":
        clauses.append(Ticket.assignee_id.is_(None))
    elif isinstance(filters.assignee, int):
        clauses.append(Ticket.assignee_id == filters.assignee)
    if filters.organisation:
        org_id = session.scalar(select(Organisation.id).where(Organisation.code == filters.organisation))
        clauses.append(Ticket.organisation_id == org_id if org_id is not None else false())
    if filters.created_from:
        clauses.append(Ticket.created_at >= _tokyo_midnight(filters.created_from))
    if filters.created_to:
        clauses.append(Ticket.created_at < _tokyo_midnight(filters.created_to + dt.timedelta(days=1)))
    if filters.sla:
        now = literal(utcnow(), UTCDateTime())
        sla = []
        if "breached" in filters.sla:
            sla += [Ticket.sla_state == "breached",
                    and_(Ticket.status.in_(OPEN_STATUSES), Ticket.resolution_due_at < now)]
        if "at_risk" in filters.sla:
            sla.append(Ticket.sla_state == "at_risk")
        if "ok" in filters.sla:
            sla.append(or_(Ticket.sla_state.is_(None), Ticket.sla_state == "ok"))
        clauses.append(or_(*sla))
    for tag in filters.tags:
        clauses.append(exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag == tag))
    for condition in filters.custom:
        clauses.append(custom_fields.filter_clause(condition, Ticket.id))
    return clauses


def _search_query(filters: QueueFilters) -> search.SearchQuery | None:
    if not filters.q:
        return None
    return search.parse_query(filters.q)


def _encode_cursor(sort: str, values: list) -> str:
    payload = [sort] + [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, kinds: list[str]) -> list:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, list) or payload[0] != sort or len(payload) != len(kinds) + 1:
            raise ValueError
        out = []
        for kind, value in zip(kinds, payload[1:]):
            if kind == "datetime":
                value = dt.datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError
            elif kind == "int":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError
            elif kind == "str":
                if not isinstance(value, str):
                    raise ValueError
            out.append(value)
        return out
    except (ValueError, TypeError, json.JSONDecodeError, IndexError):
        raise FilterError({"cursor": _l("ページ送りの位置が正しくありません。最初のページから開き直してください。")})


def _order_spec(sort: str, score=None):
    """(columns, directions, cursor kinds) for a sort; the last key is always the id."""
    if sort == "created":
        return [Ticket.created_at, Ticket.id], ["asc", "asc"], ["datetime", "int"]
    if sort == "updated":
        return [Ticket.updated_at, Ticket.id], ["desc", "desc"], ["datetime", "int"]
    if sort == "priority":
        # P1 first; within a priority, the ticket waiting longest first.
        return ([Ticket.priority, Ticket.created_at, Ticket.id], ["asc", "asc", "asc"],
                ["str", "datetime", "int"])
    if sort == "due":
        # Soonest resolution due date first, tickets without one last (see _after_due).
        return [Ticket.resolution_due_at, Ticket.id], ["asc", "asc"], ["datetime", "int"]
    if sort == "relevance":
        return ([score, Ticket.created_at, Ticket.id], ["desc", "desc", "desc"], ["int", "datetime", "int"])
    return [Ticket.created_at, Ticket.id], ["desc", "desc"], ["datetime", "int"]


def _bind(value, column):
    if isinstance(value, dt.datetime):
        return literal(value, UTCDateTime())
    return literal(value)


def _after(columns, directions, values):
    """Rows strictly after `values` in the given order (keyset pagination)."""
    if len(set(directions)) == 1:
        left = tuple_(*columns)
        right = tuple_(*[_bind(v, c) for v, c in zip(values, columns)])
        return left < right if directions[0] == "desc" else left > right
    ors = []
    for i in range(len(columns)):
        eqs = [columns[j] == _bind(values[j], columns[j]) for j in range(i)]
        cmp = (columns[i] < _bind(values[i], columns[i]) if directions[i] == "desc"
               else columns[i] > _bind(values[i], columns[i]))
        ors.append(and_(*eqs, cmp))
    return or_(*ors)


def _after_due(values):
    """Keyset predicate for ORDER BY resolution_due_at NULLS LAST, id."""
    due, ticket_id = values
    if due >= _FAR_FUTURE:
        return and_(Ticket.resolution_due_at.is_(None), Ticket.id > ticket_id)
    bound = literal(due, UTCDateTime())
    return or_(tuple_(Ticket.resolution_due_at, Ticket.id) > tuple_(bound, literal(ticket_id)),
               Ticket.resolution_due_at.is_(None))


def query_tickets(session, user: User, filters: QueueFilters, *, cursor: str | None = None,
                  limit: int = 50) -> Page:
    """One page of tickets `user` may see, matching `filters`, in the chosen order."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    where = _where(session, user, filters)
    sq = _search_query(filters)
    dialect = session.get_bind().dialect.name
    score = single_score = None
    if sq is not None and sq:
        ranked = filters.sort == "relevance" and len(sq.terms) > 1
        via_index = _use_bitmap(session, where, sq, search.CANDIDATE_LIMIT if ranked else limit + 1)
        candidates = search.candidate_clause(Ticket.search_text, Ticket.id, sq, dialect, session,
                                             via_index=via_index)
        if ranked:
            # Rank only the most recent candidates: bounded cost for very common terms.
            where = [Ticket.id.in_(_recent_candidates(where, candidates, via_index))]
            score = search.score_expression(Ticket.search_text, sq)
        else:
            # One term (or another order than relevance): every match is listed in the chosen order.
            if via_index:
                # Collected through the indexes first (materialised), then ordered: left to itself the
                # planner may walk the view newest first and test every row (see _use_bitmap).
                matches = select(Ticket.id).where(*where, candidates).cte("matches").prefix_with("MATERIALIZED")
                where = [Ticket.id.in_(select(matches.c.id))]
            else:
                where = where + [candidates]
            if filters.sort == "relevance" and len(sq.terms) == 1:
                single_score = sq.terms[0].weight
    elif sq is not None:
        where = where + [false()]
    sort = filters.sort if (filters.sort != "relevance" or score is not None) else DEFAULT_SORT
    if single_score is not None:
        sort = "relevance1"  # its own cursor kind: pages of a one-term search in recency order
    columns, directions, kinds = _order_spec(sort, score)
    stmt = select(Ticket) if score is None else select(Ticket, score.label("score"))
    stmt = stmt.options(defer(Ticket.search_text), defer(Ticket.body), defer(Ticket.context)).where(*where)
    if cursor:
        values = _decode_cursor(cursor, sort, kinds)
        if sort == "due":
            stmt = stmt.where(_after_due(values))
        else:
            stmt = stmt.where(_after(columns, directions, values))
    order = [c.desc() if d == "desc" else c.asc() for c, d in zip(columns, directions)]
    if sort == "due":
        order = [Ticket.resolution_due_at.asc().nulls_last(), Ticket.id.asc()]
    rows = session.execute(stmt.order_by(*order).limit(limit + 1)).unique().all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [row[0] for row in rows]
    scores = {row[0].id: int(row[1]) for row in rows} if score is not None else {}
    if single_score is not None:
        scores = {row[0].id: single_score for row in rows}
    next_cursor = None
    if more and items:
        last = items[-1]
        values = []
        for column, kind in zip(columns, kinds):
            if column is score:
                values.append(scores[last.id])
            elif column is Ticket.created_at:
                values.append(last.created_at)
            elif column is Ticket.updated_at:
                values.append(last.updated_at)
            elif column is Ticket.priority:
                values.append(last.priority)
            elif column is Ticket.id:
                values.append(last.id)
            elif column is Ticket.resolution_due_at:  # None is encoded as the far future
                values.append(last.resolution_due_at or _FAR_FUTURE)
        next_cursor = _encode_cursor(sort, values)
    return Page(items=items, next_cursor=next_cursor, scores=scores)


def _table_rows(session) -> float:
    return float(session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'tickets'")) or 0)


#: Cost of one index entry collected into a bitmap, relative to reading one row on a walk.
BITMAP_ENTRY_COST = 0.05
#: Cost of one row read through a bitmap (random heap access, recheck), relative to one row of a walk:
#: at 1M tickets a walk tests ~2–3 µs a row (recent rows, cached), collected rows cost ~10–30 µs.
COLLECTED_ROW_COST = 4.0
#: The newest rows of the view read to measure how dense the matches are (see _use_bitmap).
SAMPLE_ROWS = 2000


def _use_bitmap(session, where, sq: search.SearchQuery, needed: int) -> bool:
    """Whether collecting every match through the indexes beats walking the view newest first.

    A walk (an index on created_at, or on the filter's columns and created_at) stops once it has
    `needed` matches, so it reads about needed / density rows; collecting reads every match of the view
    (density × the view's rows) plus the index entries of the terms. Everything turns on the density
    of matches in the view, and the planner cannot estimate it for Japanese text: LIKE on bigrams and
    array containment on hd_bigrams() were off by 10× both ways (「納品予定日」 within a category:
    6,665 estimated, 62,904 real — collecting them took 1.5 s where a walk takes 30 ms). So it is
    measured: the newest SAMPLE_ROWS rows of the view are read and tested (a bounded walk, ~25 ms);
    the view's size comes from the planner, whose estimates of plain filters are good.
    """
    if session.get_bind().dialect.name != "postgresql":
        return False
    shortest = search.shortest_indexed_term(session, "postgresql")
    if any(len(t) < shortest for t in sq.candidate_terms) or (sq.candidate_pairs and shortest > 2):
        return False  # no index serves such short terms (pg_trgm: 3+, the bigram index: 2)
    session.execute(text("SET LOCAL jit = off"))  # JIT compilation costs more than these queries
    # A bitmap of a large view (a category: 200,000 tickets) must stay exact: a lossy one rechecks every
    # row of its pages, and the bigram recheck costs ~0.2 ms a row (2 s instead of 40 ms).
    session.execute(text("SET LOCAL work_mem = '32MB'"))
    window = (select(Ticket.id, Ticket.search_text).where(*where)
              .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(SAMPLE_ROWS).subquery())
    test = search.candidate_clause(window.c.search_text, window.c.id, sq, "postgresql", session)
    sampled, matched = session.execute(
        select(func.count(), func.count().filter(test)).select_from(window)).one()
    if sampled < SAMPLE_ROWS or matched >= needed:
        return False  # the whole view was read, or the walk finds what it needs within the sample
    filtered = (search.estimate_rows(session, select(Ticket.id).where(*where)) if where
                else max(_table_rows(session), 1.0))
    density = max(matched, 0.5) / sampled
    walk = min(filtered, needed / density)
    candidates = search.candidate_clause(Ticket.search_text, Ticket.id, sq, "postgresql", session, via_index=True)
    entries = search.estimate_rows(session, select(Ticket.id).where(candidates))
    collect = BITMAP_ENTRY_COST * entries + COLLECTED_ROW_COST * density * filtered
    return collect < walk


def _recent_candidates(where, candidates, via_index: bool):
    """SELECT of the ids of the CANDIDATE_LIMIT most recent matching tickets."""
    if via_index:
        matches = (select(Ticket.id, Ticket.created_at).where(*where, candidates)
                   .cte("matches").prefix_with("MATERIALIZED"))
        return (select(matches.c.id).order_by(matches.c.created_at.desc(), matches.c.id.desc())
                .limit(search.CANDIDATE_LIMIT))
    recent = (select(Ticket.id).where(*where, candidates)
              .order_by(Ticket.created_at.desc(), Ticket.id.desc())
              .limit(search.CANDIDATE_LIMIT).subquery())
    return select(recent.c.id)


def count_tickets(session, user: User, filters: QueueFilters, *, cap: int = COUNT_CAP) -> Count:
    """How many tickets match, counted up to `cap` (shown as "1,000+" beyond it)."""
    where = _where(session, user, filters)
    sq = _search_query(filters)
    if sq is not None:
        if not sq:
            return Count(0, False)
        via_index = _use_bitmap(session, where, sq, cap + 1)
        candidates = search.candidate_clause(Ticket.search_text, Ticket.id, sq,
                                             session.get_bind().dialect.name, session, via_index=via_index)
        if via_index:
            matches = select(Ticket.id).where(*where, candidates).cte("matches").prefix_with("MATERIALIZED")
            inner = select(matches.c.id).limit(cap + 1).subquery()
            n = session.scalar(select(func.count()).select_from(inner)) or 0
            return Count(min(n, cap), n > cap)
        where.append(candidates)
        # Walk newest first (the same plan as the page itself): without the ORDER BY the planner may
        # collect every trigram match of a common word before it stops at the cap.
        inner = (select(Ticket.id).where(*where).order_by(Ticket.created_at.desc(), Ticket.id.desc())
                 .limit(cap + 1).subquery())
        n = session.scalar(select(func.count()).select_from(inner)) or 0
        return Count(min(n, cap), n > cap)
    inner = select(Ticket.id).where(*where).limit(cap + 1).subquery()
    n = session.scalar(select(func.count()).select_from(inner)) or 0
    return Count(min(n, cap), n > cap)


#: View counts are cached this long per user and view (agents reload the queue all day).
COUNT_CACHE_SECONDS = 30
_COUNT_CACHE: dict[str, tuple[float, int, bool]] = {}


def cached_count(session, user: User, filters: QueueFilters, *, cap: int = COUNT_CAP) -> Count:
    """count_tickets, remembered for COUNT_CACHE_SECONDS (Redis when configured, else this process)."""
    import time

    from flask import current_app, has_app_context

    pairs = filters.to_args()
    # Views that depend on who asks ("me", scoping) are keyed by user; the rest are shared by staff.
    who = user.id if (filters.assignee == "me" or not user.is_staff) else "staff"
    key = f"helpdesk:qcount:{who}:{cap}:{json.dumps(pairs, ensure_ascii=False)}"
    redis_url = current_app.config.get("REDIS_URL") if has_app_context() else None
    if has_app_context() and current_app.testing:
        return count_tickets(session, user, filters, cap=cap)
    if redis_url:
        from helpdesk.jobs import redis_connection

        try:
            conn = redis_connection()
            hit = conn.get(key)
            if hit is not None:
                value, capped = json.loads(hit)
                return Count(value, capped)
            result = count_tickets(session, user, filters, cap=cap)
            conn.setex(key, COUNT_CACHE_SECONDS, json.dumps([result.value, result.capped]))
            return result
        except Exception:  # Redis down: count without the cache
            return count_tickets(session, user, filters, cap=cap)
    now = time.monotonic()
    hit = _COUNT_CACHE.get(key)
    if hit and now - hit[0] < COUNT_CACHE_SECONDS:
        return Count(hit[1], hit[2])
    result = count_tickets(session, user, filters, cap=cap)
    if len(_COUNT_CACHE) > 10_000:
        _COUNT_CACHE.clear()
    _COUNT_CACHE[key] = (now, result.value, result.capped)
    return result
