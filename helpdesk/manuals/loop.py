"""The knowledge loop: what people searched without a good answer, feedback as a ranking signal,
articles drafted from tickets and published as manual files, and the effect of each article.

Plain functions taking a session, values and an explicit actor (no `request`, no `current_user`).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.common import TOKYO, utcnow
from helpdesk.insights.pii import scrub
from helpdesk.manuals.models import ArticleView, Deflection, KbSearch, ManualArticle, ManualArticleVersion, ManualDraft
from knowledge_base.content import CATEGORIES, SLUG_RE, parse_article
from knowledge_base.text import normalize, strip_noise, tokens_ngram
from helpdesk.accounts.models import User
from helpdesk.insights.models import Problem, RecurringGroup, RecurringMember
from helpdesk.manuals.service import DEFLECTION_WINDOW, sync_manuals
from helpdesk.tickets import service as tickets
from helpdesk.tickets.models import Category, Comment, Ticket, TicketArticle

ORG_ROLES = ("municipality", "clinic", "wholesaler")
#: A search whose best article holds less than this share of the typed terms (Hit.coverage) had no good answer.
GAP_COVERAGE = 0.3
#: A search counts as "ticket right after" when the same person submits a ticket within this time.
TICKET_AFTER = dt.timedelta(minutes=30)
#: Feedback decay: a click or a "resolved by" link counts 2^(-age / FEEDBACK_HALF_LIFE).
FEEDBACK_HALF_LIFE = dt.timedelta(days=30)
#: Weights of the feedback kinds before decay, and the largest boost feedback can give (score × (1 + boost)).
FEEDBACK_WEIGHTS = {"resolved": 3.0, "linked": 1.0, "click": 0.5}
FEEDBACK_MAX_BOOST = 0.25
#: Saturation: an article with FEEDBACK_SATURATION decayed points gets half of the largest boost.
FEEDBACK_SATURATION = 20.0
FEEDBACK_CACHE_SECONDS = 300.0
EFFECT_WINDOW_DAYS = 28
QUERY_MAX = 500


class LoopError(Exception):
    """A refused operation; `field` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- logging searches and typing sessions -----------------------------------------------------

def _mask(text: str, names=()) -> str:
    return scrub(normalize(text)[:QUERY_MAX], names=[n for n in names if n])


def log_search(session, *, source: str, query: str, hits, user=None, role: str | None = None,
               token: str | None = None) -> int | None:
    """Record a search (or the latest text of a typing session, one row per token); the text is masked first."""
    query = (query or "").strip()
    if len(query) < 4 or source not in ("search", "portal", "agent"):
        return None
    top = hits[0] if hits else None
    names = [getattr(user, "name", None)] if user is not None else []
    values = dict(query=_mask(query, names), top_slug=top.slug if top else None,
                  top_score=float(top.coverage) if top else 0.0, role=role if role in ORG_ROLES else None)
    row = session.scalar(select(KbSearch).where(KbSearch.token == token)) if token else None
    if row is None:
        row = KbSearch(source=source, token=token, user_id=getattr(user, "id", None), at=utcnow(), **values)
        session.add(row)
    else:
        for k, v in values.items():
            setattr(row, k, v)
        row.at = utcnow()
    session.commit()
    return row.id


def mark_clicked(session, *, slug: str, token: str | None = None, search_id: int | None = None,
                 user_id: int | None = None) -> bool:
    """The person opened (or an agent inserted) an article from this search / typing session."""
    q = select(KbSearch)
    if token:
        q = q.where(KbSearch.token == token)
    elif search_id:
        q = q.where(KbSearch.id == search_id)
    else:
        return False
    row = session.scalar(q)
    if row is None or (row.user_id is not None and user_id is not None and row.user_id != user_id):
        return False
    if row.clicked_slug is None:
        row.clicked_slug, row.clicked_at = slug[:120], utcnow()
        session.commit()
    return True


def mark_ticket_submitted(session, *, token: str, at: dt.datetime | None = None) -> None:
    row = session.scalar(select(KbSearch).where(KbSearch.token == token))
    if row is not None and row.ticket_at is None:
        row.ticket_at = at or utcnow()
        session.commit()


# --- feedback as a ranking signal -------------------------------------------------------------

def decay(age: dt.timedelta) -> float:
    """2^(-age / half-life): a signal 30 days old counts half, 90 days old an eighth."""
    return 0.5 ** (max(age.total_seconds(), 0.0) / FEEDBACK_HALF_LIFE.total_seconds())


def feedback_points(session, now: dt.datetime | None = None, horizon_days: int = 180) -> dict[str, float]:
    """Per slug: decayed points from "resolved by" links, ticket links and suggestion clicks."""
    now = now or utcnow()
    since = now - dt.timedelta(days=horizon_days)
    points: dict[str, float] = defaultdict(float)
    for slug, at, resolved in session.execute(select(TicketArticle.slug, TicketArticle.linked_at,
                                                     TicketArticle.resolved_by).where(TicketArticle.linked_at >= since)):
        points[slug] += FEEDBACK_WEIGHTS["resolved" if resolved else "linked"] * decay(now - at)
    for slug, at in session.execute(select(ArticleView.slug, ArticleView.at).where(
            ArticleView.at >= since, ArticleView.source.in_(("suggest", "search")))):
        points[slug] += FEEDBACK_WEIGHTS["click"] * decay(now - at)
    return dict(points)


def prior_from_points(points: dict[str, float]) -> dict[str, float]:
    """Boost in [0, FEEDBACK_MAX_BOOST): saturating, so a popular article never buries a better match."""
    return {slug: FEEDBACK_MAX_BOOST * p / (p + FEEDBACK_SATURATION) for slug, p in points.items() if p > 0}


_PRIOR_LOCK = threading.Lock()
_PRIOR: dict[str, object] = {"at": -1e9, "value": {}}


def feedback_prior(session) -> dict[str, float]:
    """The ranking prior, recomputed at most every FEEDBACK_CACHE_SECONDS per process."""
    now = time.monotonic()
    if now - _PRIOR["at"] < FEEDBACK_CACHE_SECONDS:  # type: ignore[operator]
        return _PRIOR["value"]  # type: ignore[return-value]
    with _PRIOR_LOCK:
        value = prior_from_points(feedback_points(session))
        _PRIOR.update(at=now, value=value)
    return value


def reset_feedback_cache() -> None:
    _PRIOR.update(at=-1e9, value={})


# --- content gaps -----------------------------------------------------------------------------

@dataclass
class GapTopic:
    label: str
    count: int = 0
    roles: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    top_slug: str | None = None
    terms: set[str] = field(default_factory=set)


def _content_terms(text: str) -> set[str]:
    return {t for t in tokens_ngram(strip_noise(normalize(text))) if len(t) >= 2}


_LABEL_RUN_RE = re.compile(r"[\u30a0-\u30ff\u4e00-\u9fffー]{2,}|[a-z][a-z0-9-]{2,}")


def gap_rows(session, *, since: dt.datetime, until: dt.datetime | None = None) -> list[tuple[KbSearch, list[str]]]:
    """Searches and typing sessions without a good answer, each with its reasons (low / no_click / ticket)."""
    until = until or utcnow()
    rows = list(session.scalars(select(KbSearch).where(KbSearch.at >= since, KbSearch.at < until).where(
        or_(KbSearch.top_score < GAP_COVERAGE, KbSearch.clicked_slug.is_(None), KbSearch.ticket_at.is_not(None)))
        .order_by(KbSearch.at.desc()).limit(5000)))
    # "A ticket right after": marked by the new-ticket page, or the same person's ticket in the window, matched in Python
    # (interval arithmetic differs between SQLite and PostgreSQL; the rows are few and already filtered).
    users = {r.user_id for r in rows if r.source != "agent" and r.user_id is not None}
    tickets_by_user: dict[int, list[dt.datetime]] = defaultdict(list)
    if users:
        for uid, at in session.execute(select(Ticket.requester_id, Ticket.created_at).where(
                Ticket.requester_id.in_(users), Ticket.created_at >= since,
                Ticket.created_at < until + TICKET_AFTER)):
            tickets_by_user[uid].append(at)
    out = []
    for r in rows:
        reasons = []
        if r.top_score < GAP_COVERAGE:
            reasons.append("low")
        ticket_after = r.ticket_at is not None or any(
            r.at <= t <= r.at + TICKET_AFTER for t in tickets_by_user.get(r.user_id, ()))
        if ticket_after and r.clicked_slug is None and r.source != "agent":
            reasons.append("ticket")
        elif r.clicked_slug is None and r.source != "agent":
            reasons.append("no_click")
        if reasons and (reasons != ["no_click"] or r.top_score < 0.6):
            # a confident answer that was merely not clicked is not a gap by itself
            out.append((r, reasons))
    return out


def content_gaps(session, *, since: dt.datetime, until: dt.datetime | None = None, limit: int = 30) -> list[GapTopic]:
    """Gap searches grouped by topic (shared content terms), largest first, with counts per role and examples."""
    topics: list[GapTopic] = []
    for row, reasons in gap_rows(session, since=since, until=until):
        terms = _content_terms(row.query)
        if not terms:
            continue
        best, best_sim = None, 0.0
        for t in topics:
            sim = len(terms & t.terms) / len(terms | t.terms)
            if sim > best_sim:
                best, best_sim = t, sim
        if best is None or best_sim < 0.25:
            runs = _LABEL_RUN_RE.findall(strip_noise(row.query))
            best = GapTopic(label=" ".join(runs[:2])[:40] if runs else row.query[:30], top_slug=row.top_slug)
            topics.append(best)
        best.terms |= terms
        best.count += 1
        best.roles["agent" if row.source == "agent" else (row.role or "unknown")] += 1
        best.reasons.update(reasons)
        if len(best.examples) < 3 and row.query not in best.examples:
            best.examples.append(row.query)
    topics.sort(key=lambda t: (-t.count, t.label))
    return topics[:limit]


def uncovered_groups(session, min_share: float = 0.2):
    """Active recurring groups without a manual: under `min_share` of their tickets carry a linked article
    and no article was published from the group. Returns [(group, linked share, problem id)]."""
    linked = (select(RecurringMember.group_id, func.count(func.distinct(TicketArticle.ticket_id)))
              .join(TicketArticle, TicketArticle.ticket_id == RecurringMember.ticket_id)
              .group_by(RecurringMember.group_id))
    linked_by_group = dict(session.execute(linked).all())
    published = set(session.scalars(select(ManualDraft.group_id).where(
        ManualDraft.status == "published", ManualDraft.group_id.is_not(None))))
    problems = dict(session.execute(select(Problem.source_group_id, func.max(Problem.id))
                                    .where(Problem.source_group_id.is_not(None)).group_by(Problem.source_group_id)).all())
    out = []
    for g in session.scalars(select(RecurringGroup).where(RecurringGroup.active.is_(True))
                             .order_by(RecurringGroup.size.desc(), RecurringGroup.id)):
        share = linked_by_group.get(g.id, 0) / g.size if g.size else 0.0
        if g.id not in published and share < min_share:
            out.append((g, share, problems.get(g.id)))
    return out


# --- drafts from tickets ----------------------------------------------------------------------

_SENT_RE = re.compile(r"[^。！？!?\n]+[。！？!?]?")
_GREETING_RE = re.compile(r"^(?:お世話に|いつも|お問い合わせ|ご連絡|お待たせ|ご不便|よろしく|以上|引き続き|[^\s]{0,12}(?:様|さま)$)")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_RE.findall(text or "") if len(s.strip()) >= 6]


def _tickets_for(session, *, group_id: int | None, ticket_refs: list[str] | None):
    if group_id is not None:
        group = session.get(RecurringGroup, group_id)
        if group is None:
            raise LoopError(_l("その繰り返しグループは見つかりません。"), "group_id")
        tickets = list(session.scalars(select(Ticket).join(RecurringMember, RecurringMember.ticket_id == Ticket.id)
                                       .where(RecurringMember.group_id == group_id).order_by(Ticket.id)))
        return group, tickets
    refs = sorted({r.strip().upper() for r in ticket_refs or [] if r.strip()})
    if not refs:
        raise LoopError(_l("チケット番号を1件以上入力してください。"), "ticket_refs")
    ids = []
    for ref in refs:
        m = re.fullmatch(r"HD-(\d{1,12})", ref)
        if not m:
            raise LoopError(_l("チケット番号「%(ref)s」は HD-000123 の形で入力してください。", ref=ref[:20]), "ticket_refs")
        ids.append(int(m.group(1)))
    tickets = list(session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)))
    missing = sorted(set(ids) - {t.id for t in tickets})
    if missing:
        raise LoopError(_l("チケット %(ref)s が見つかりません。", ref=f"HD-{missing[0]:06d}"), "ticket_refs")
    return None, tickets


def build_draft(session, *, group_id: int | None = None, ticket_refs: list[str] | None = None) -> dict:
    """Markdown draft (ja) from a recurring group or a set of tickets: the fields of a ManualDraft."""
    group, tickets = _tickets_for(session, group_id=group_id, ticket_refs=ticket_refs)
    resolved = [t for t in tickets if t.status in ("resolved", "closed")] or tickets
    ids = [t.id for t in resolved]
    user_ids = {t.requester_id for t in tickets if t.requester_id}
    comments = list(session.execute(select(Comment, User).join(User, User.id == Comment.author_id, isouter=True)
                                    .where(Comment.ticket_id.in_(ids)).order_by(Comment.ticket_id, Comment.id)))
    user_ids |= {c.author_id for c, _ in comments if c.author_id}
    names = [n for (n,) in session.execute(select(User.name).where(User.id.in_(user_ids)))] if user_ids else []

    roles = Counter(t.role for t in tickets if t.role in ORG_ROLES)
    role = "common"
    if roles:
        top, n = roles.most_common(1)[0]
        if n / max(sum(roles.values()), 1) >= 0.6:
            role = top
    cats = Counter(t.category_id for t in tickets if t.category_id)
    category = None
    if cats:
        code = session.scalar(select(Category.code).where(Category.id == cats.most_common(1)[0][0]))
        category = code if code in CATEGORIES else None

    title = (group.label if group is not None else resolved[0].subject).strip()[:120]
    # Symptoms: the requesters' own words (subject + first sentence), most common first, masked.
    seen: set[str] = set()
    symptoms: list[str] = []
    for t in tickets:
        for s in [t.subject] + _sentences(strip_noise(t.body or ""))[:1]:
            s = scrub(s.strip(), names)
            key = normalize(s)
            if s and key not in seen and len(symptoms) < 6:
                seen.add(key)
                symptoms.append(s)
    # Steps: the public replies of staff on the resolved tickets; the reply sharing most words with the others first.
    replies = [c.body for c, u in comments if c.is_public and u is not None and u.is_staff]
    steps: list[str] = []
    if replies:
        term_sets = [_content_terms(r) for r in replies]
        common = Counter(t for ts in term_sets for t in ts)
        best = max(range(len(replies)), key=lambda i: (sum(common[t] for t in term_sets[i]), -i))
        for s in _sentences(replies[best]):
            if not _GREETING_RE.match(s) and len(steps) < 8:
                steps.append(scrub(s, names))
    others = []
    for r in replies:
        if r is replies[0] and len(replies) == 1:
            break
        first = next((s for s in _sentences(r) if not _GREETING_RE.match(s)), "")
        first = scrub(first, names)
        if first and first not in steps and first not in others and len(others) < 3:
            others.append(first)

    lines = [f"# {title}", "", "## こんな症状のときに", ""]
    lines += [f"- {s}" for s in symptoms] or ["- （症状を書いてください）"]
    lines += ["", "## 対処の手順", ""]
    lines += [f"{i}. {s}" for i, s in enumerate(steps, 1)] or ["1. （手順を書いてください）"]
    if others:
        lines += ["", "## ほかの担当者の回答から", ""] + [f"- {s}" for s in others]
    lines += ["", "## それでも解決しないとき", "",
              "[ヘルプデスクへの問い合わせ方法](../common/contact-helpdesk.ja.md)をご覧ください。", ""]
    problem_id = None
    if group is not None:
        problem_id = session.scalar(select(func.max(Problem.id)).where(Problem.source_group_id == group.id))
    tags = [t for t in (group.top_terms if group is not None else [])][:6]
    slug_hint = f"faq-group-{group.id}" if group is not None else f"faq-ticket-{ids[0]}"
    return dict(slug=slug_hint, role=role, category=category, tags=tags, title_ja=title, body_ja="\n".join(lines),
                title_en="", body_en="", group_id=group.id if group is not None else None, problem_id=problem_id,
                ticket_ids=[t.id for t in tickets])


def create_draft(session, actor: Actor, *, group_id: int | None = None, ticket_refs: list[str] | None = None) -> ManualDraft:
    fields = build_draft(session, group_id=group_id, ticket_refs=ticket_refs)
    draft = ManualDraft(status="draft", created_by_id=actor.user_id, **fields)
    session.add(draft)
    session.flush()
    audit.record(session, actor, "manual.draft_create", "manual_draft", draft.id,
                 detail={"group_id": draft.group_id, "tickets": len(draft.ticket_ids)})
    session.commit()
    return draft


def get_draft(session, draft_id: int) -> ManualDraft:
    draft = session.get(ManualDraft, draft_id)
    if draft is None:
        raise LoopError(_l("下書きが見つかりません。"))
    return draft


def list_drafts(session, status: str | None = "draft") -> list[ManualDraft]:
    q = select(ManualDraft).order_by(ManualDraft.updated_at.desc(), ManualDraft.id.desc())
    if status:
        q = q.where(ManualDraft.status == status)
    return list(session.scalars(q))


def _check_fields(data: dict, *, publishing: bool) -> dict:
    errors: dict[str, str] = {}
    slug = (data.get("slug") or "").strip()
    if not SLUG_RE.match(slug) or len(slug) > 120:
        errors["slug"] = _l("スラッグは半角英小文字・数字・ハイフンで入力してください（例: stock-report-error）。")
    if data.get("role") not in ("municipality", "clinic", "wholesaler", "common"):
        errors["role"] = _l("対象を選んでください。")
    if not (data.get("title_ja") or "").strip():
        errors["title_ja"] = _l("タイトル（日本語）を入力してください。")
    if not (data.get("body_ja") or "").strip():
        errors["body_ja"] = _l("本文（日本語）を入力してください。")
    if publishing:
        if not (data.get("title_en") or "").strip():
            errors["title_en"] = _l("公開するには英語のタイトルを入力してください。")
        if not (data.get("body_en") or "").strip():
            errors["body_en"] = _l("公開するには英語の本文を入力してください。")
    return errors


def save_draft(session, draft_id: int, actor: Actor, data: dict, *, expected_version: int | None = None) -> ManualDraft:
    draft = get_draft(session, draft_id)
    if draft.status != "draft":
        raise LoopError(_l("公開済み・破棄済みの下書きは編集できません。"))
    if expected_version is not None and expected_version != draft.version:
        raise LoopError(_l("ほかの編集者がこの下書きを先に保存しました。ページを開き直してから編集してください。"))
    errors = _check_fields(data, publishing=False)
    if errors:
        field_name, message = next(iter(errors.items()))
        raise LoopError(message, field_name)
    draft.slug = data["slug"].strip()
    draft.role = data["role"]
    draft.title_ja = data["title_ja"].strip()[:300]
    draft.body_ja = data["body_ja"].replace("\r\n", "\n")
    draft.title_en = (data.get("title_en") or "").strip()[:300]
    draft.body_en = (data.get("body_en") or "").replace("\r\n", "\n")
    draft.tags = [t.strip() for t in re.split(r"[,、\n]", data.get("tags") or "") if t.strip()][:12]
    draft.version += 1
    audit.record(session, actor, "manual.draft_save", "manual_draft", draft.id, detail={"version": draft.version})
    session.commit()
    return draft


def _front_matter(draft: ManualDraft, lang: str, title: str, version: int, updated: dt.date) -> str:
    import yaml

    meta = {"slug": draft.slug, "role": draft.role, "title": title, "lang": lang, "tags": list(draft.tags or []) or [title[:30]],
            "version": version, "updated": updated.isoformat()}
    if draft.category:
        meta["category"] = draft.category
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n\n"


_WRITE_LOCK = threading.Lock()


def publish_draft(session, draft_id: int, actor: Actor, manuals_dir: str | Path, *,
                  expected_version: int | None = None) -> ManualDraft:
    """Write `<role>/<slug>.ja.md` and `.en.md` under the manuals directory (a new version when the slug
    exists), sync them into the database, link the draft's tickets to the article and audit it."""
    draft = get_draft(session, draft_id)
    if draft.status != "draft":
        raise LoopError(_l("この下書きは既に公開または破棄されています。"))
    if expected_version is not None and expected_version != draft.version:
        raise LoopError(_l("ほかの編集者がこの下書きを先に保存しました。ページを開き直してから公開してください。"))
    data = {"slug": draft.slug, "role": draft.role, "title_ja": draft.title_ja, "body_ja": draft.body_ja,
            "title_en": draft.title_en, "body_en": draft.body_en}
    errors = _check_fields(data, publishing=True)
    if errors:
        field_name, message = next(iter(errors.items()))
        raise LoopError(message, field_name)
    root = Path(manuals_dir)
    existing = session.scalars(select(ManualArticle).where(ManualArticle.slug == draft.slug)).all()
    if any(a.role != draft.role for a in existing if a.active):
        raise LoopError(_l("このスラッグは別の対象の記事で使われています。別のスラッグにしてください。"), "slug")
    doc_version = max((a.doc_version for a in existing), default=0) + 1
    today = utcnow().astimezone(TOKYO).date()
    with _WRITE_LOCK:
        folder = root / draft.role
        folder.mkdir(parents=True, exist_ok=True)
        staged = []
        try:
            for lang, title, body in (("ja", draft.title_ja, draft.body_ja), ("en", draft.title_en, draft.body_en)):
                text = _front_matter(draft, lang, title.strip(), doc_version, today) + body.strip("\n") + "\n"
                fd, tmp = tempfile.mkstemp(prefix=f".{draft.slug}.{lang}.", suffix=".tmp", dir=folder)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                check = folder / f".check-{os.getpid()}-{threading.get_ident()}" / f"{draft.slug}.{lang}.md"
                check.parent.mkdir(exist_ok=True)
                try:
                    check.write_text(text, encoding="utf-8")
                    _, errs = parse_article(check, draft.role)
                finally:
                    check.unlink(missing_ok=True)
                    check.parent.rmdir()
                if errs:
                    raise LoopError(_l("記事として読み込めません: %(field)s: %(message)s", field=errs[0].field,
                                       message=errs[0].message),
                                    "body_ja" if lang == "ja" else "body_en")
                staged.append((tmp, folder / f"{draft.slug}.{lang}.md"))
            for tmp, final in staged:
                os.replace(tmp, final)
            staged = []
        finally:
            for tmp, _ in staged:
                Path(tmp).unlink(missing_ok=True)
    sync_manuals(session, root, actor)
    row = session.scalar(select(ManualArticle).where(ManualArticle.slug == draft.slug, ManualArticle.lang == "ja"))
    draft = get_draft(session, draft_id)
    draft.status = "published"
    draft.published_at = utcnow()
    draft.published_version = row.version if row is not None else doc_version
    draft.version += 1
    for ticket_id in draft.ticket_ids or []:
        try:
            tickets.link_article(session, ticket_id, draft.slug, actor, commit=False)
        except tickets.TicketError:  # a ticket deleted or merged since: the article stays published
            continue
    audit.record(session, actor, "manual.publish", "manual_article", f"{draft.slug}.ja",
                 detail={"draft_id": draft.id, "version": draft.published_version, "tickets": len(draft.ticket_ids or []),
                         "problem_id": draft.problem_id, "group_id": draft.group_id})
    session.commit()
    return draft


def discard_draft(session, draft_id: int, actor: Actor) -> ManualDraft:
    draft = get_draft(session, draft_id)
    if draft.status != "draft":
        raise LoopError(_l("この下書きは既に公開または破棄されています。"))
    draft.status = "discarded"
    draft.version += 1
    audit.record(session, actor, "manual.draft_discard", "manual_draft", draft.id)
    session.commit()
    return draft


# --- effect of each published article ----------------------------------------------------------

@dataclass
class ArticleEffect:
    slug: str
    title: str
    published_at: dt.datetime
    version: int
    topic: str  # "group" (the recurring group it was drafted from) or "category"
    before: int
    after: int
    days_after: int
    deflections: int

    @property
    def before_per_week(self) -> float:
        return self.before * 7 / EFFECT_WINDOW_DAYS

    @property
    def after_per_week(self) -> float | None:
        return self.after * 7 / self.days_after if self.days_after >= 1 else None

    @property
    def change(self) -> float | None:
        after = self.after_per_week
        if after is None or not self.before:
            return None
        return after / self.before_per_week - 1.0


def article_effects(session, kb, *, now: dt.datetime | None = None, locale: str = "ja") -> list[ArticleEffect]:
    """Per published article (its latest version): tickets of its topic in the EFFECT_WINDOW_DAYS before
    and after publication (after = up to now, shown per week) and deflections since publication."""
    now = now or utcnow()
    window = dt.timedelta(days=EFFECT_WINDOW_DAYS)
    latest = (select(ManualArticle.slug, ManualArticle.version, ManualArticle.category, ManualArticleVersion.created_at)
              .join(ManualArticleVersion, and_(ManualArticleVersion.article_id == ManualArticle.id,
                                               ManualArticleVersion.version == ManualArticle.version))
              .where(ManualArticle.lang == "ja", ManualArticle.active.is_(True)))
    drafts = {d.slug: d for d in session.scalars(select(ManualDraft).where(ManualDraft.status == "published")
                                                .order_by(ManualDraft.published_at))}
    out = []
    for slug, version, category, created in session.execute(latest):
        d = drafts.get(slug)
        published = d.published_at if d is not None and d.published_at else created
        lo, hi = published - window, min(published + window, now)
        if d is not None and d.group_id is not None:
            topic = "group"
            base = (select(Ticket.created_at).join(RecurringMember, RecurringMember.ticket_id == Ticket.id)
                    .where(RecurringMember.group_id == d.group_id))
        elif category:
            topic = "category"
            base = select(Ticket.created_at).join(Category, Category.id == Ticket.category_id).where(Category.code == category)
        else:
            continue
        times = [t for (t,) in session.execute(base.where(Ticket.created_at >= lo, Ticket.created_at < hi))]
        before = sum(1 for t in times if t < published)
        after = len(times) - before
        opened = session.execute(select(Deflection.opened_at, Deflection.submitted_at).where(
            Deflection.slug == slug, Deflection.opened_at >= published, Deflection.opened_at <= now - DEFLECTION_WINDOW)).all()
        deflected = sum(1 for o, s in opened if s is None or s > o + DEFLECTION_WINDOW)
        art = kb.get(slug, locale) or kb.get(slug)
        out.append(ArticleEffect(slug, art.title if art else slug, published, version, topic, before, after,
                                 max(int((hi - published).total_seconds() // 86400), 0), deflected))
    out.sort(key=lambda e: e.published_at, reverse=True)
    return out

