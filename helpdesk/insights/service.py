"""Insights domain logic: recurring groups, problems (backlog items), evidence packs, fix impact.

Plain functions taking a session, ids/values and an explicit actor; no Flask request state.
Trend reports live in `trends.py`, delivery to the development tracker in `tracker.py`.
"""
from __future__ import annotations

import datetime as dt
import io
import logging
from collections import Counter, defaultdict

import numpy as np
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from helpdesk import audit, jobs
from helpdesk.audit import Actor
from helpdesk.common import TOKYO, utcnow
from helpdesk.insights.models import (PROBLEM_TRANSITIONS, SYSTEM_ONLY_STATUSES, PreparedText, Problem, ProblemTicket, RecurringGroup,
                                      RecurringMember, RecurringRun)
from helpdesk.insights.pii import scrub
from helpdesk.accounts.models import Organisation, User
from helpdesk.extensions import db
from helpdesk.insights import clustering, trends
from helpdesk.text import clean_input
from helpdesk.tickets.models import Ticket, format_ref

logger = logging.getLogger(__name__)


def _clustering():
    """The clustering module, imported on first use: it loads scikit-learn/SciPy (~1 s), which the web
    pages and CLI commands that never cluster must not pay for at start-up (issue 12: CLI start-up)."""
    return clustering

#: A new run's group takes over an old group's id (and its problem) when they share this much.
GROUP_MATCH_OVERLAP = 0.5
TREND_WEEKS = 4
TREND_RATIO = 1.5
TREND_MIN_CHANGE = 3
VERIFY_WEEKS = 3
IMPACT_WEEKS = 8
EXAMPLES = 5


class InsightsError(ValueError):
    """A request the insights domain refuses, with a message for the user."""


class InvalidTransition(InsightsError):
    pass


class NotFound(InsightsError):
    pass


# -- time helpers ----------------------------------------------------------------------------
def tokyo_day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=TOKYO)


def week_start(moment: dt.datetime | dt.date) -> dt.date:
    day = moment.astimezone(TOKYO).date() if isinstance(moment, dt.datetime) else moment
    return day - dt.timedelta(days=day.weekday())


def _ticket_models():
    return Ticket


# -- recurring detection ---------------------------------------------------------------------
def _ticket_rows(session, since: dt.date | None = None, until: dt.date | None = None, ids=None):
    Ticket = _ticket_models()
    query = (select(Ticket.id, Ticket.external_id, Ticket.subject, Ticket.body, Ticket.created_at, Ticket.role,
                    Ticket.organisation_id)
             .where(Ticket.merged_into_id.is_(None)).order_by(Ticket.created_at, Ticket.id))
    if since:
        query = query.where(Ticket.created_at >= tokyo_day_start(since))
    if until:
        query = query.where(Ticket.created_at < tokyo_day_start(until + dt.timedelta(days=1)))
    if ids is not None:
        query = query.where(Ticket.id.in_(list(ids)))
    return session.execute(query).all()


def compute_recurring(session, since: dt.date | None = None, until: dt.date | None = None) -> list[dict]:
    """Cluster the tickets in the window afresh; the contract's JSON rows, largest group first."""
    rows = _ticket_rows(session, since, until)
    groups = _clustering().cluster_texts([(r.id, f"{r.subject}\n{r.body}") for r in rows])
    by_id = {r.id: r for r in rows}
    out = []
    for g in groups:
        ids = sorted(g.keys, key=lambda i: (by_id[i].created_at, i))
        out.append({"label": g.label, "size": len(ids), "ticket_refs": [format_ref(i) for i in ids],
                    "external_ids": [by_id[i].external_id for i in ids if by_id[i].external_id],
                    "top_terms": list(g.top_terms)})
    out.sort(key=lambda d: (-d["size"], d["label"]))
    return out


from helpdesk.insights.textprep import PREP_VERSION  # noqa: E402  (bumped when preparation changes)


def _digest(subject: str | None, body: str | None) -> str:
    import hashlib

    return hashlib.sha1(f"{PREP_VERSION}\x00{subject or ''}\x00{body or ''}".encode("utf-8")).hexdigest()


def prepared_texts(session, rows) -> tuple[list[str], list[str]]:
    """Tokens and cleaned texts for ticket rows (id, subject, body), from the cache or prepared now."""
    from sqlalchemy import insert

    cache: dict[int, tuple[str, str, str]] = {}
    ids = [r.id for r in rows]
    for start in range(0, len(ids), 20000):
        for tid, digest, tok, clean in session.execute(
                select(PreparedText.ticket_id, PreparedText.digest, PreparedText.tokens, PreparedText.cleaned)
                .where(PreparedText.ticket_id.in_(ids[start:start + 20000]))):
            cache[tid] = (digest, tok, clean)
    digests = [_digest(r.subject, r.body) for r in rows]
    todo = [i for i, r in enumerate(rows) if cache.get(r.id, ("",))[0] != digests[i]]
    if todo:
        tok, clean = _clustering().prepare_items([(rows[i].id, f"{rows[i].subject}\n{rows[i].body}") for i in todo])
        stale = [rows[i].id for i in todo if rows[i].id in cache]
        for start in range(0, len(stale), 20000):
            session.execute(delete(PreparedText).where(PreparedText.ticket_id.in_(stale[start:start + 20000])))
        values = [{"ticket_id": rows[i].id, "digest": digests[i], "tokens": t, "cleaned": c, "prepared_at": utcnow()}
                  for i, t, c in zip(todo, tok, clean)]
        for start in range(0, len(values), 5000):
            session.execute(insert(PreparedText), values[start:start + 5000])
        for i, t, c in zip(todo, tok, clean):
            cache[rows[i].id] = (digests[i], t, c)
    return [cache[r.id][1] for r in rows], [cache[r.id][2] for r in rows]


def _trend(weekly: list[int]) -> str:
    recent = sum(weekly[-TREND_WEEKS:])
    before = sum(weekly[-2 * TREND_WEEKS:-TREND_WEEKS])
    if recent - before >= TREND_MIN_CHANGE and recent >= TREND_RATIO * before:
        return "rising"
    if before - recent >= TREND_MIN_CHANGE and before >= TREND_RATIO * recent:
        return "falling"
    return "stable"


def _group_stats(rows, reference: dt.datetime) -> dict:
    """first/last seen, roles, weekly counts (8 weeks up to `reference`) and trend of some tickets."""
    created = [r.created_at for r in rows]
    last_week = week_start(reference)
    weeks = [last_week - dt.timedelta(weeks=i) for i in range(2 * TREND_WEEKS - 1, -1, -1)]
    counts = Counter(week_start(c) for c in created)
    weekly = [counts.get(w, 0) for w in weeks]
    return {"first_seen": min(created), "last_seen": max(created),
            "roles": dict(Counter(r.role or "unknown" for r in rows)),
            "weekly": {"weeks": [w.isoformat() for w in weeks], "counts": weekly}, "trend": _trend(weekly)}


def _reference_time(session) -> dt.datetime:
    Ticket = _ticket_models()
    newest = session.scalar(select(func.max(Ticket.created_at)))
    return newest or utcnow()


def refresh_groups(session, actor: Actor | None = None) -> dict:
    """Recompute every recurring group from all tickets (the nightly full run); commits."""
    actor = actor or Actor.system("insights")
    rows = _ticket_rows(session)
    run = RecurringRun(started_at=utcnow(), tickets=len(rows))
    session.add(run)
    session.flush()
    keys = [r.id for r in rows]
    tokens, cleaned = prepared_texts(session, rows)
    groups, model = _clustering().cluster_prepared(keys, tokens, cleaned, order=list(range(len(rows)))[::-1])
    by_id = {r.id: r for r in rows}
    reference = _reference_time(session)

    old_members: dict[int, set[int]] = defaultdict(set)
    for gid, tid in session.execute(select(RecurringMember.group_id, RecurringMember.ticket_id)
                                    .join(RecurringGroup).where(RecurringGroup.active.is_(True))):
        old_members[gid].add(tid)
    taken: set[int] = set()
    kept_ids = []
    for index, g in enumerate(groups):
        members = set(g.keys)
        best, best_overlap = None, 0.0
        for gid, old in old_members.items():
            if gid in taken:
                continue
            overlap = len(members & old) / max(len(members | old), 1)
            if overlap > best_overlap:
                best, best_overlap = gid, overlap
        row = session.get(RecurringGroup, best) if best is not None and best_overlap >= GROUP_MATCH_OVERLAP else None
        if row is None:
            row = RecurringGroup(label=g.label)
            session.add(row)
        else:
            taken.add(row.id)
        stats = _group_stats([by_id[k] for k in g.keys], reference)
        row.label, row.top_terms, row.size = g.label[:200], list(g.top_terms), len(g.keys)
        row.first_seen, row.last_seen = stats["first_seen"], stats["last_seen"]
        row.roles, row.weekly, row.trend = stats["roles"], stats["weekly"], stats["trend"]
        row.representative_ticket_id = g.representative
        row.active, row.run_id, row.centroid_index = True, run.id, index
        session.flush()
        session.execute(delete(RecurringMember).where(RecurringMember.group_id == row.id))
        session.add_all([RecurringMember(group_id=row.id, ticket_id=k, source="full") for k in g.keys])
        kept_ids.append(row.id)
    stale = [gid for gid in old_members if gid not in kept_ids]
    if stale:
        for row in session.scalars(select(RecurringGroup).where(RecurringGroup.id.in_(stale))):
            row.active = False
        session.execute(delete(RecurringMember).where(RecurringMember.group_id.in_(stale)))
    session.flush()
    linked = _link_open_problems(session, kept_ids)
    run.groups = len(groups)
    run.finished_at = utcnow()
    if groups and model.svd is not None:
        run.model_blob = _model_blob(model, [g.centroid for g in groups], [g.min_similarity for g in groups])
    # Older runs' models are not needed any more.
    for old in session.scalars(select(RecurringRun).where(RecurringRun.id != run.id,
                                                          RecurringRun.model_blob.is_not(None))):
        old.model_blob = None
    audit.record(session, actor, "insights.groups_refreshed", "recurring_run", run.id,
                 {"tickets": len(rows), "groups": len(groups), "linked": linked})
    session.commit()
    return {"tickets": len(rows), "groups": len(groups), "linked": linked}


def _link_open_problems(session, group_ids: list[int]) -> int:
    """Link every member of a group to the problems promoted from it (new matching tickets)."""
    if not group_ids:
        return 0
    problems = session.scalars(select(Problem).where(Problem.source_group_id.in_(group_ids))).all()
    added = 0
    for problem in problems:
        have = set(session.scalars(select(ProblemTicket.ticket_id).where(ProblemTicket.problem_id == problem.id)))
        members = session.scalars(select(RecurringMember.ticket_id)
                                  .where(RecurringMember.group_id == problem.source_group_id)).all()
        for tid in members:
            if tid not in have:
                session.add(ProblemTicket(problem_id=problem.id, ticket_id=tid, source="auto"))
                added += 1
    return added


def _model_blob(model, centroids: list, bars: list[float]) -> bytes:
    """The fitted model, the groups' centroids and admission bars as an .npz of plain arrays (no pickle)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **model.to_arrays(), centroids=np.vstack(centroids).astype(np.float32),
                        bars=np.asarray(bars, dtype=np.float64))
    return buffer.getvalue()


def _latest_model(session):
    """The newest stored run and its state {model, centroids, bars}; (None, None) without a usable one."""
    run = session.scalars(select(RecurringRun).where(RecurringRun.model_blob.is_not(None))
                          .order_by(RecurringRun.id.desc()).limit(1)).first()
    if run is None:
        return None, None
    try:
        with np.load(io.BytesIO(run.model_blob), allow_pickle=False) as arrays:
            state = {"model": _clustering().Model.from_arrays(arrays), "centroids": list(arrays["centroids"]),
                     "bars": [float(b) for b in arrays["bars"]]}
    except (ValueError, OSError, KeyError) as exc:  # an older format (or a pickle): wait for the next refresh
        logger.warning("recurring run %s: stored model not usable (%s); new tickets wait for the next refresh",
                       run.id, exc)
        return None, None
    return run, state


def assign_ticket(session, ticket_id: int) -> int | None:
    """Put a new ticket into the nearest existing group (incremental step); returns the group id."""
    Ticket = _ticket_models()
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    if session.scalar(select(RecurringMember.group_id).where(RecurringMember.ticket_id == ticket_id)):
        return None  # already placed: idempotent
    run, state = _latest_model(session)
    if run is None:
        return None
    model = state["model"]
    tokens, cleaned = prepared_texts(session, [ticket])
    vectors, energy = model.project(model.transform(tokens, cleaned))
    if energy[0] < model.min_energy:
        return None
    sims = [float(vectors[0] @ c) for c in state["centroids"]]
    best = max(range(len(sims)), key=sims.__getitem__)
    if sims[best] < state["bars"][best]:
        return None
    group = session.scalars(select(RecurringGroup).where(RecurringGroup.run_id == run.id,
                                                         RecurringGroup.centroid_index == best,
                                                         RecurringGroup.active.is_(True))).first()
    if group is None:
        return None
    session.add(RecurringMember(group_id=group.id, ticket_id=ticket.id, source="incremental",
                                similarity=float(sims[best])))
    group.size = (group.size or 0) + 1
    group.last_seen = max(group.last_seen or ticket.created_at, ticket.created_at)
    roles = dict(group.roles or {})
    roles[ticket.role or "unknown"] = roles.get(ticket.role or "unknown", 0) + 1
    group.roles = roles
    session.flush()
    _link_open_problems(session, [group.id])
    session.commit()
    return group.id


def list_groups(session, *, active_only: bool = True) -> list[RecurringGroup]:
    query = select(RecurringGroup).order_by(RecurringGroup.size.desc(), RecurringGroup.id)
    if active_only:
        query = query.where(RecurringGroup.active.is_(True))
    return list(session.scalars(query))


def group_tickets(session, group_id: int, limit: int = 500):
    """The tickets of a recurring group, newest first, with the id of a problem each is linked to (or None)."""
    Ticket = _ticket_models()
    linked = (select(ProblemTicket.problem_id).where(ProblemTicket.ticket_id == Ticket.id)
              .order_by(ProblemTicket.problem_id).limit(1).scalar_subquery())
    return session.execute(
        select(Ticket, linked.label("problem_id"), RecurringMember.source)
        .join(RecurringMember, RecurringMember.ticket_id == Ticket.id)
        .where(RecurringMember.group_id == group_id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)).all()


def group_problem_ids(session) -> dict[int, int]:
    """group id → id of the newest problem promoted from it."""
    return {gid: pid for pid, gid in session.execute(
        select(Problem.id, Problem.source_group_id).where(Problem.source_group_id.is_not(None)).order_by(Problem.id))}


# -- problems --------------------------------------------------------------------------------
def _clean(text: str | None, limit: int) -> str:
    return clean_input(text, limit)


def get_problem(session, problem_id: int) -> Problem:
    problem = session.get(Problem, problem_id)
    if problem is None:
        raise NotFound(_l("問題が見つかりません。"))
    return problem


def promote_group(session, group_id: int, actor: Actor, *, title: str | None = None,
                  description: str | None = None) -> Problem:
    """Create a candidate problem from a recurring group, linked to all its tickets; commits."""
    group = session.get(RecurringGroup, group_id)
    if group is None or not group.active:
        raise NotFound(_l("このグループはもうありません（再集計されました）。一覧を開き直してください。"))
    title = _clean(title, 200) or f"繰り返し発生: {group.label}"[:200]
    members = session.scalars(select(RecurringMember.ticket_id).where(RecurringMember.group_id == group.id)).all()
    summary = (f"{group.size}件の問い合わせ（{roles_in_words(group.roles)}）。"
               f"特徴語: {'、'.join(group.top_terms[:6])}")
    problem = Problem(title=title, description=_clean(description, 20000) or summary, status="candidate",
                      source_group_id=group.id, created_by_id=actor.user_id)
    session.add(problem)
    session.flush()
    session.add_all([ProblemTicket(problem_id=problem.id, ticket_id=tid, source="group",
                                   linked_by_id=actor.user_id) for tid in members])
    audit.record(session, actor, "problem.created", "problem", problem.id,
                 {"from_group": group.id, "tickets": len(members), "title": title})
    session.commit()
    return problem


def create_problem(session, actor: Actor, *, title: str, description: str = "",
                   ticket_ids: list[int] = ()) -> Problem:
    """Create a candidate problem from hand-picked tickets; commits."""
    title = _clean(title, 200)
    if not title:
        raise InsightsError(_l("件名を入力してください。"))
    problem = Problem(title=title, description=_clean(description, 20000), created_by_id=actor.user_id)
    session.add(problem)
    session.flush()
    for tid in dict.fromkeys(ticket_ids):
        session.add(ProblemTicket(problem_id=problem.id, ticket_id=tid, source="manual", linked_by_id=actor.user_id))
    audit.record(session, actor, "problem.created", "problem", problem.id, {"tickets": list(ticket_ids)})
    session.commit()
    return problem


def update_problem(session, problem_id: int, actor: Actor, *, title: str, description: str, workaround: str,
                   expected_version: int | None = None) -> Problem:
    problem = get_problem(session, problem_id)
    _check_version(problem, expected_version)
    title = _clean(title, 200)
    if not title:
        raise InsightsError(_l("件名を入力してください。"))
    before = {"title": problem.title, "description": problem.description, "workaround": problem.workaround}
    problem.title, problem.description, problem.workaround = title, _clean(description, 20000), _clean(workaround, 5000)
    after = {"title": problem.title, "description": problem.description, "workaround": problem.workaround}
    changed = {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after[k]}
    if changed:
        audit.record(session, actor, "problem.updated", "problem", problem.id, changed)
    session.commit()
    return problem


def _check_version(problem: Problem, expected_version: int | None) -> None:
    if expected_version is not None and problem.version != expected_version:
        raise InsightsError(_l("ほかの人がこの問題を更新しました。画面を開き直してから、もう一度操作してください。"))


def allowed_transitions(problem: Problem) -> list[str]:
    """The statuses a person may choose for this problem ("sent" only comes from actually sending)."""
    manual = PROBLEM_TRANSITIONS.get(problem.status, frozenset()) - SYSTEM_ONLY_STATUSES
    return sorted(manual, key=lambda s: list(PROBLEM_TRANSITIONS).index(s))


def transition_problem(session, problem_id: int, to: str, actor: Actor, *, fixed_on: dt.date | None = None,
                       expected_version: int | None = None, commit: bool = True, sending: bool = False) -> Problem:
    """Move a problem to status `to`, refusing transitions the lifecycle does not allow.

    `sending=True` only from tracker.send_problem: "sent" cannot be chosen by hand.
    """
    problem = get_problem(session, problem_id)
    _check_version(problem, expected_version)
    if to in SYSTEM_ONLY_STATUSES and not sending:
        raise InvalidTransition(_l("「開発へ送付済み」には、開発トラッカーへ送ったときだけ変わります。"))
    if to not in PROBLEM_TRANSITIONS.get(problem.status, frozenset()):
        raise InvalidTransition(_l("「%(before)s」から「%(after)s」には変更できません。",
                                   before=STATUS_LABELS.get(problem.status, problem.status),
                                   after=STATUS_LABELS.get(to, to)))
    if to == "fixed":
        if fixed_on is None:
            raise InsightsError(_l("修正のリリース日を入力してください。"))
        problem.fixed_on = fixed_on
        problem.fixed_at = utcnow()
        problem.reappeared_at = None
    if to == "verified":
        problem.verified_at = utcnow()
    before = problem.status
    problem.status = to
    audit.record(session, actor, "problem.status", "problem", problem.id,
                 {"before": before, "after": to, "fixed_on": fixed_on.isoformat() if fixed_on else None})
    if commit:
        session.commit()
    return problem


def link_ticket(session, problem_id: int, ticket_id: int, actor: Actor, *, source: str = "manual") -> bool:
    """Link a ticket to a problem (idempotent); True if a link was added."""
    problem = get_problem(session, problem_id)
    Ticket = _ticket_models()
    if session.get(Ticket, ticket_id) is None:
        raise NotFound(_l("チケットが見つかりません。"))
    if session.get(ProblemTicket, (problem.id, ticket_id)) is not None:
        return False
    session.add(ProblemTicket(problem_id=problem.id, ticket_id=ticket_id, source=source, linked_by_id=actor.user_id))
    audit.record(session, actor, "problem.ticket_linked", "problem", problem.id, {"ticket_id": ticket_id})
    session.commit()
    return True


def unlink_ticket(session, problem_id: int, ticket_id: int, actor: Actor) -> bool:
    link = session.get(ProblemTicket, (problem_id, ticket_id))
    if link is None:
        return False
    session.delete(link)
    audit.record(session, actor, "problem.ticket_unlinked", "problem", problem_id, {"ticket_id": ticket_id})
    session.commit()
    return True


def problems_for_ticket(session, ticket_id: int) -> list[Problem]:
    """Problems a ticket is linked to, or whose source group it belongs to ("known problem")."""
    linked = select(ProblemTicket.problem_id).where(ProblemTicket.ticket_id == ticket_id)
    in_group = (select(Problem.id).join(RecurringMember, RecurringMember.group_id == Problem.source_group_id)
                .where(RecurringMember.ticket_id == ticket_id))
    return list(session.scalars(select(Problem).where(Problem.id.in_(linked) | Problem.id.in_(in_group))
                                .order_by(Problem.id)))


def linked_tickets(session, problem_id: int, limit: int | None = None):
    Ticket = _ticket_models()
    query = (select(Ticket, ProblemTicket.source).join(ProblemTicket, ProblemTicket.ticket_id == Ticket.id)
             .where(ProblemTicket.problem_id == problem_id).order_by(Ticket.created_at.desc(), Ticket.id.desc()))
    if limit:
        query = query.limit(limit)
    return session.execute(query).all()


def list_problems(session) -> list[tuple[Problem, int]]:
    counts = (select(ProblemTicket.problem_id, func.count().label("n")).group_by(ProblemTicket.problem_id).subquery())
    rows = session.execute(select(Problem, func.coalesce(counts.c.n, 0))
                           .outerjoin(counts, counts.c.problem_id == Problem.id)
                           .order_by(Problem.updated_at.desc(), Problem.id.desc())).all()
    return [(p, n) for p, n in rows]


LINKABLE_STATUSES = ("candidate", "accepted", "sent", "fixed")


def linkable_problems(session) -> list[Problem]:
    """Problems a ticket can still be linked to, newest activity first (the ticket page's list: no counts,
    which would aggregate every link on each page view)."""
    return list(session.scalars(select(Problem).where(Problem.status.in_(LINKABLE_STATUSES))
                                .order_by(Problem.updated_at.desc(), Problem.id.desc())))


# -- evidence pack ---------------------------------------------------------------------------
def evidence(session, problem_id: int) -> dict:
    """Counts by week and role, top organisations (codes only), 3–5 scrubbed examples."""
    problem = get_problem(session, problem_id)
    rows = session.execute(
        select(Ticket.id, Ticket.subject, Ticket.body, Ticket.created_at, Ticket.role, Organisation.code,
               Organisation.name, User.name)
        .join(ProblemTicket, ProblemTicket.ticket_id == Ticket.id)
        .outerjoin(Organisation, Organisation.id == Ticket.organisation_id)
        .outerjoin(User, User.id == Ticket.requester_id)
        .where(ProblemTicket.problem_id == problem.id).order_by(Ticket.created_at)).all()
    by_week: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        by_week[week_start(r.created_at).isoformat()][r.role or "unknown"] += 1
    orgs = Counter(r.code for r in rows if r.code)
    examples, seen = [], set()
    group = problem.source_group
    preferred = [group.representative_ticket_id] if group and group.representative_ticket_id else []
    ordered = sorted(rows, key=lambda r: (r.id not in preferred, -r.created_at.timestamp()))
    for r in ordered:
        key = (r.subject or "").strip()[:40]
        if key in seen:
            continue
        seen.add(key)
        names = [n for n in (r[7],) if n]
        # Names nobody listed (a signature 「髙橋 誠」, 「佐藤様」) are found in the text too (pii.person_name_spans).
        examples.append({"subject": scrub(r.subject, names, detect_names=True)[:200],
                         "body": scrub(r.body, names, detect_names=True)[:600],
                         "role": r.role, "week": week_start(r.created_at).isoformat()})
        if len(examples) >= EXAMPLES:
            break
    return {
        "problem": {"ref": problem.ref, "title": problem.title, "status": problem.status,
                    "description": problem.description},
        "tickets": len(rows),
        "first_seen": rows[0].created_at.astimezone(TOKYO).isoformat() if rows else None,
        "last_seen": rows[-1].created_at.astimezone(TOKYO).isoformat() if rows else None,
        "by_week": [{"week": w, "total": sum(c.values()), "by_role": dict(c)} for w, c in sorted(by_week.items())],
        "by_role": dict(Counter(r.role or "unknown" for r in rows)),
        "top_organisations": [{"code": code, "tickets": n} for code, n in orgs.most_common(10)],
        "top_terms": list(group.top_terms) if group else [],
        "examples": examples,
    }


ROLE_WORDS = {"municipality": "自治体", "clinic": "医療機関", "wholesaler": "卸業者", "unknown": "不明"}
STATUS_WORDS = {"candidate": "候補", "accepted": "受理済み", "sent": "開発へ送付済み", "fixed": "修正済み",
                "verified": "効果確認済み"}
#: The same words in the reader's language, for messages shown on the pages.
STATUS_LABELS = {key: _l(word) for key, word in STATUS_WORDS.items()}


def roles_in_words(counts: dict | None) -> str:
    """{"municipality": 4, "clinic": 1} as "自治体 4 件、医療機関 1 件" (largest first)."""
    items = sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return "、".join(f"{ROLE_WORDS.get(k, k)} {v} 件" for k, v in items) or "—"


def evidence_markdown(pack: dict) -> str:
    p = pack["problem"]
    lines = [f"# {p['title']}", "", f"- 問題番号: {p['ref']}", f"- 状態: {STATUS_WORDS.get(p['status'], p['status'])}",
             f"- 関連チケット数: {pack['tickets']}（{roles_in_words(pack.get('by_role'))}）",
             f"- 初回: {(pack['first_seen'] or '—')[:16].replace('T', ' ')} / 最終: {(pack['last_seen'] or '—')[:16].replace('T', ' ')}（東京時間）"]
    if pack["top_terms"]:
        lines.append(f"- 特徴語: {', '.join(pack['top_terms'])}")
    if p["description"]:
        lines += ["", "## 概要", "", p["description"]]
    lines += ["", "## 週別件数（ロール別）", "", "| 週 | 合計 | 自治体 | 医療機関 | 卸業者 |", "|---|---:|---:|---:|---:|"]
    for w in pack["by_week"]:
        r = w["by_role"]
        lines.append(f"| {w['week']} | {w['total']} | {r.get('municipality', 0)} | {r.get('clinic', 0)} | {r.get('wholesaler', 0)} |")
    lines += ["", "## 影響の大きい組織（コードのみ）", ""]
    lines += [f"- {o['code']}: {o['tickets']}件" for o in pack["top_organisations"]] or ["- なし"]
    lines += ["", "## 問い合わせ例（個人情報は置換済み）", ""]
    for i, ex in enumerate(pack["examples"], 1):
        body = ex["body"].replace("\n", "\n> ")
        lines += [f"### 例{i}（{ROLE_WORDS.get(ex['role'] or 'unknown', ex['role'])}・{ex['week']}の週）", "", f"**{ex['subject']}**", "", f"> {body}", ""]
    return "\n".join(lines).rstrip() + "\n"


# -- fix impact ------------------------------------------------------------------------------
def impact(session, problem_id: int, *, today: dt.date | None = None, weeks: int = IMPACT_WEEKS) -> dict | None:
    """Weekly matching tickets before vs after the fix date, the verified suggestion, reappearance."""
    problem = get_problem(session, problem_id)
    if problem.fixed_on is None:
        return None
    today = today or utcnow().astimezone(TOKYO).date()
    fix_week = week_start(problem.fixed_on)
    created = session.scalars(select(Ticket.created_at).join(ProblemTicket, ProblemTicket.ticket_id == Ticket.id)
                              .where(ProblemTicket.problem_id == problem.id)).all()
    counts = Counter(week_start(c) for c in created)
    before_weeks = [fix_week - dt.timedelta(weeks=i) for i in range(weeks, 0, -1)]
    last_full = week_start(today) - dt.timedelta(weeks=1)
    after_weeks = [fix_week + dt.timedelta(weeks=i) for i in range(1, weeks + 1)
                   if fix_week + dt.timedelta(weeks=i) <= last_full]
    before = [counts.get(w, 0) for w in before_weeks]
    after = [counts.get(w, 0) for w in after_weeks]
    before_mean = sum(before) / len(before) if before else 0.0
    after_mean = sum(after) / len(after) if after else None
    low = max(1.0, 0.25 * before_mean)
    stays_down = len(after) >= VERIFY_WEEKS and all(c <= low for c in after[-VERIFY_WEEKS:])
    # The first week after a release still sees tickets in flight; later weeks count.
    reappeared = any(c >= max(3, 0.5 * before_mean) for c in after[1:])
    return {
        "fixed_on": problem.fixed_on.isoformat(), "fix_week": fix_week.isoformat(),
        "before": [{"week": w.isoformat(), "count": c} for w, c in zip(before_weeks, before)],
        "after": [{"week": w.isoformat(), "count": c} for w, c in zip(after_weeks, after)],
        "fix_week_count": counts.get(fix_week, 0),
        "before_mean": round(before_mean, 2), "after_mean": None if after_mean is None else round(after_mean, 2),
        "change": None if after_mean is None or before_mean == 0 else round((after_mean - before_mean) / before_mean, 3),
        "suggest_verified": problem.status == "fixed" and stays_down and not reappeared,
        "reappeared": reappeared, "verify_weeks": VERIFY_WEEKS,
    }


def check_reappearance(session, problem_id: int) -> bool:
    """Flag a fixed/verified problem whose tickets came back; True when newly flagged (commits)."""
    problem = get_problem(session, problem_id)
    if problem.status not in ("fixed", "verified") or problem.reappeared_at is not None:
        return False
    result = impact(session, problem_id)
    if not result or not result["reappeared"]:
        return False
    problem.reappeared_at = utcnow()
    audit.record(session, Actor.system("insights"), "problem.reappeared", "problem", problem.id,
                 {"after": result["after"]})
    session.commit()
    return True


# -- jobs entry points ------------------------------------------------------------------------
def on_tickets_imported() -> None:
    """Hook called after `helpdesk import-tickets`: regroup everything and rebuild the rollups."""
    refresh_groups(db.session)
    trends.refresh_rollups(db.session)


def schedule_assignment(session, ticket_id: int) -> None:
    """Queue the incremental assignment of a new ticket (runs after the creating commit)."""
    from helpdesk.insights.jobs import assign_new_tickets  # the jobs module calls this one

    jobs.batch_after_commit(session, assign_new_tickets, ticket_id, queue="insights")
