"""Manuals domain logic: the cached knowledge base, sync files -> DB, rendering, feedback, analytics.

Functions take a session, plain values and an explicit actor; none reads `request` or `current_user`.
"""
from __future__ import annotations

import datetime as dt
import difflib
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nh3
from flask_babel import lazy_gettext as _l
from markdown_it import MarkdownIt
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from helpdesk import audit
from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.manuals.models import ArticleFeedback, ArticleView, Deflection, ManualArticle, ManualArticleVersion
from helpdesk.text import clean_input
from knowledge_base import ContentError, KnowledgeBase, load_directory
from helpdesk.tickets import service as tickets
from helpdesk.tickets.models import Category, Ticket, TicketArticle

logger = logging.getLogger(__name__)

#: A suggestion opened from the new-ticket page counts as a deflection when the same page token
#: submits no ticket within this window.
DEFLECTION_WINDOW = dt.timedelta(minutes=30)
ROLES = ("municipality", "clinic", "wholesaler", "common")
VIEW_SOURCES = ("browse", "search", "suggest", "related", "direct")


class ManualsError(Exception):
    """A refused manuals operation; the message is shown to the user."""


class AlreadyAnswered(ManualsError):
    pass


# --- the process-wide knowledge base --------------------------------------------------------

_KB_LOCK = threading.Lock()
_KB_CACHE: dict[str, tuple[KnowledgeBase, float]] = {}
#: How often (seconds) the cached index checks the files' fingerprint for changes.
KB_RECHECK_SECONDS = 5.0


def get_kb(directory: str | Path, *, force: bool = False) -> KnowledgeBase:
    """The cached KnowledgeBase of `directory`, rebuilt when the files change (checked every few seconds).

    Bad files are left out (and logged) so one broken article never takes the pages down;
    `helpdesk kb check` is what fails CI on them.
    """
    key = str(Path(directory).resolve())
    now = time.monotonic()
    cached = _KB_CACHE.get(key)
    if cached and not force:
        kb, checked = cached
        if now - checked < KB_RECHECK_SECONDS:
            return kb
    with _KB_LOCK:
        cached = _KB_CACHE.get(key)
        if cached and not force and not cached[0].is_stale():
            _KB_CACHE[key] = (cached[0], now)
            return cached[0]
        if not Path(key).is_dir():
            kb = KnowledgeBase([], directory=key)
        else:
            kb = KnowledgeBase.load(key, strict=False)
        for err in kb.errors:
            logger.warning("manual content problem: %s", err)
        _KB_CACHE[key] = (kb, now)
        return kb


def invalidate_kb() -> None:
    with _KB_LOCK:
        _KB_CACHE.clear()


# --- sync files -> DB -----------------------------------------------------------------------

@dataclass
class SyncSummary:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    deactivated: list[str] = field(default_factory=list)
    errors: list[ContentError] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{len(self.created)} created, {len(self.updated)} updated (new version), {self.unchanged} unchanged, "
                f"{len(self.deactivated)} removed, {len(self.errors)} content errors")


def sync_manuals(session, directory: str | Path, actor: Actor | None = None) -> SyncSummary:
    """Load the files into the database: new article -> v1; changed file -> version + 1; same -> no-op.

    Files with content errors are skipped (reported in the summary); articles whose file disappeared
    are marked inactive (history kept).
    """
    actor = actor or Actor.system("kb sync")
    summary = SyncSummary()
    articles, summary.errors = load_directory(directory) if Path(directory).is_dir() else ([], [
        ContentError(directory, None, "is not a directory")])
    existing = {(a.slug, a.lang): a for a in session.scalars(select(ManualArticle))}
    seen: set[tuple[str, str]] = set()
    for art in articles:
        key = (art.slug, art.lang)
        seen.add(key)
        row = existing.get(key)
        fields = dict(role=art.role, title=art.title[:300], body=art.body, tags=list(art.tags), summary=art.summary,
                      category=art.category, related=list(art.related), doc_version=art.version,
                      checksum=art.checksum, updated=art.updated)
        if row is None:
            row = ManualArticle(slug=art.slug, lang=art.lang, version=1, active=True, **fields)
            session.add(row)
            session.flush()
            _add_version(session, row)
            audit.record(session, actor, "manual.create", "manual_article", f"{art.slug}.{art.lang}",
                         detail={"version": 1, "checksum": art.checksum})
            summary.created.append(f"{art.slug}.{art.lang}")
        elif row.checksum != art.checksum or not row.active:
            changed = row.checksum != art.checksum
            for name, value in fields.items():
                setattr(row, name, value)
            row.active = True
            row.synced_at = utcnow()
            if changed:
                row.version += 1
                _add_version(session, row)
                summary.updated.append(f"{art.slug}.{art.lang}")
            audit.record(session, actor, "manual.update", "manual_article", f"{art.slug}.{art.lang}",
                         detail={"version": row.version, "checksum": art.checksum})
        else:
            summary.unchanged += 1
    for key, row in existing.items():
        if key not in seen and row.active and not any(e.path.endswith(f"{key[0]}.{key[1]}.md") for e in summary.errors):
            row.active = False
            audit.record(session, actor, "manual.deactivate", "manual_article", f"{key[0]}.{key[1]}")
            summary.deactivated.append(f"{key[0]}.{key[1]}")
    session.commit()
    invalidate_kb()
    return summary


def _add_version(session, row: ManualArticle) -> None:
    session.add(ManualArticleVersion(article_id=row.id, version=row.version, doc_version=row.doc_version,
                                     title=row.title, body=row.body, tags=list(row.tags or []),
                                     checksum=row.checksum, updated=row.updated))


def article_row(session, slug: str, lang: str) -> ManualArticle | None:
    return session.scalar(select(ManualArticle).where(ManualArticle.slug == slug, ManualArticle.lang == lang))


def versions(session, slug: str, lang: str) -> list[ManualArticleVersion]:
    row = article_row(session, slug, lang)
    if row is None:
        return []
    return list(session.scalars(select(ManualArticleVersion).where(ManualArticleVersion.article_id == row.id)
                                .order_by(ManualArticleVersion.version.desc())))


def version_diff(session, slug: str, lang: str, old: int, new: int) -> list[tuple[str, str]]:
    """Line diff between two stored versions: [(kind, line)] with kind in ' ', '+', '-', '@'."""
    by_v = {v.version: v for v in versions(session, slug, lang)}
    if old not in by_v or new not in by_v:
        raise ManualsError(_l("指定された版が見つかりません。"))
    a, b = by_v[old], by_v[new]
    out: list[tuple[str, str]] = []
    lines = difflib.unified_diff(f"# {a.title}\n{a.body}".splitlines(), f"# {b.title}\n{b.body}".splitlines(),
                                 fromfile=f"v{old}", tofile=f"v{new}", lineterm="", n=3)
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = line[:1] if line[:1] in "+-@" else " "
        out.append((kind, line[1:] if kind != "@" else line))
    return out


# --- rendering ------------------------------------------------------------------------------

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
_ALLOWED_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "ul", "ol", "li", "strong", "em", "code",
                 "pre", "blockquote", "a", "table", "thead", "tbody", "tr", "th", "td", "img", "kbd", "del"}
_ALLOWED_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"style"}, "td": {"style"},
                  "h1": {"id"}, "h2": {"id"}, "h3": {"id"}, "h4": {"id"}, "h5": {"id"}, "h6": {"id"}, "ol": {"start"}}
#: Links between manual files: `../common/password-reset`, `password-reset.ja.md`, `../clinic/x.md#sec-2`.
_MD_LINK_RE = re.compile(r"^(?:\.\./|\./)?(?:(?P<role>municipality|clinic|wholesaler|common)/)?"
                         r"(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)(?:\.(?:ja|en))?(?:\.md)?/?(?P<frag>#[\w-]*)?$")


@dataclass(frozen=True)
class Rendered:
    html: str
    toc: list[tuple[int, str, str]]  # (level, anchor id, text)


def render_markdown(text: str, link_for=None) -> Rendered:
    """Markdown -> safe HTML (raw HTML is escaped, then nh3 keeps only a short allow-list) + TOC.

    `link_for(role|None, slug)` turns links to other manual files (`../common/x.ja.md`) into page URLs.
    """
    env: dict = {}
    tokens = _MD.parse(text or "", env)
    toc: list[tuple[int, str, str]] = []
    n = 0
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            n += 1
            anchor = f"sec-{n}"
            tok.attrSet("id", anchor)
            level = int(tok.tag[1])
            inline = tokens[i + 1]
            label = "".join(c.content for c in (inline.children or []) if c.type in ("text", "code_inline"))
            if level in (2, 3):
                toc.append((level, anchor, label))
        elif tok.type == "inline" and link_for is not None:
            for child in tok.children or []:
                if child.type == "link_open":
                    m = _MD_LINK_RE.match(child.attrGet("href") or "")
                    if m:
                        child.attrSet("href", link_for(m.group("role"), m.group("slug")) + (m.group("frag") or ""))
    html = _MD.renderer.render(tokens, _MD.options, env)
    safe = nh3.clean(html, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRS, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer", strip_comments=True)
    return Rendered(safe, toc)


# --- feedback, views, deflection ------------------------------------------------------------

def record_feedback(session, *, slug: str, lang: str, version: int, user_id: int, helpful: bool,
                    comment: str | None, actor: Actor) -> ArticleFeedback:
    """Store "was this helpful?"; a second answer by the same user to the same version is refused."""
    comment = clean_input(comment, 2000) or None
    exists = session.scalar(select(ArticleFeedback.id).where(
        ArticleFeedback.user_id == user_id, ArticleFeedback.slug == slug, ArticleFeedback.version == version,
        ArticleFeedback.lang == lang))
    if exists:
        raise AlreadyAnswered(_l("この版の記事には既に回答いただいています。ありがとうございました。"))
    row = ArticleFeedback(slug=slug, lang=lang, version=version, user_id=user_id, helpful=bool(helpful), comment=comment)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise AlreadyAnswered(_l("この版の記事には既に回答いただいています。ありがとうございました。")) from None
    audit.record(session, actor, "manual.feedback", "manual_article", f"{slug}.{lang}",
                 detail={"version": version, "helpful": bool(helpful)})
    session.commit()
    return row


def has_answered(session, *, slug: str, lang: str, version: int, user_id: int) -> bool:
    return session.scalar(select(ArticleFeedback.id).where(
        ArticleFeedback.user_id == user_id, ArticleFeedback.slug == slug, ArticleFeedback.version == version,
        ArticleFeedback.lang == lang)) is not None


def record_view(session, *, slug: str, lang: str, user_id: int | None, source: str = "direct") -> None:
    session.add(ArticleView(slug=slug, lang=lang, user_id=user_id,
                            source=source if source in VIEW_SOURCES else "direct"))
    session.commit()


_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def valid_token(token: str | None) -> bool:
    return bool(token and _TOKEN_RE.match(token))


def record_suggestion_opened(session, *, token: str, slug: str, user_id: int | None) -> bool:
    """A suggested article opened from the new-ticket page (idempotent per token + slug)."""
    if not valid_token(token):
        return False
    if session.scalar(select(Deflection.id).where(Deflection.token == token, Deflection.slug == slug)):
        return False
    try:
        with session.begin_nested():
            session.add(Deflection(token=token, slug=slug, user_id=user_id))
            session.flush()
    except IntegrityError:
        return False
    session.commit()
    return True


def record_ticket_submitted(session, *, token: str, at: dt.datetime | None = None) -> int:
    """The new-ticket page with this token submitted a ticket: its openings are not deflections."""
    if not valid_token(token):
        return 0
    at = at or utcnow()
    rows = list(session.scalars(select(Deflection).where(Deflection.token == token,
                                                         Deflection.submitted_at.is_(None))))
    for row in rows:
        row.submitted_at = at
    session.commit()
    return len(rows)


def deflection_counts(session, now: dt.datetime | None = None) -> dict[str, int]:
    """Per slug: openings whose token submitted no ticket within DEFLECTION_WINDOW (window elapsed)."""
    now = now or utcnow()
    cutoff = now - DEFLECTION_WINDOW
    rows = session.execute(select(Deflection.slug, Deflection.opened_at, Deflection.submitted_at)
                           .where(Deflection.opened_at <= cutoff)).all()
    counts: dict[str, int] = {}
    for slug, opened, submitted in rows:
        if submitted is None or submitted > opened + DEFLECTION_WINDOW:
            counts[slug] = counts.get(slug, 0) + 1
    return counts


# --- tickets --------------------------------------------------------------------------------

def link_to_ticket(session, *, ticket_ref: str, slug: str, user, actor: Actor, kb: KnowledgeBase,
                   resolved_by: bool = False):
    """Link a known article to a ticket the user may see (writes a ticket event)."""
    slug = (slug or "").strip()
    if kb.get(slug) is None:
        raise ManualsError(_l("その記事は見つかりません。"))
    if not user.is_staff:
        raise ManualsError(_l("記事をチケットに紐付けられるのは担当者だけです。"))
    try:
        ticket = tickets.get_visible(session, user, ticket_ref)
    except tickets.NotFound:
        raise ManualsError(_l("チケットが見つかりません。")) from None
    return tickets.link_article(session, ticket.id, slug, actor, resolved_by=resolved_by)


# --- analytics ------------------------------------------------------------------------------

@dataclass
class ArticleStats:
    slug: str
    role: str
    title: str
    category: str | None
    views: int = 0
    helpful: int = 0
    not_helpful: int = 0
    linked: int = 0
    resolved: int = 0
    deflections: int = 0

    @property
    def helpful_ratio(self) -> float | None:
        total = self.helpful + self.not_helpful
        return self.helpful / total if total else None


@dataclass
class CategoryStats:
    code: str
    label: str
    tickets: int
    with_article: int
    articles: int

    @property
    def coverage(self) -> float | None:
        return self.with_article / self.tickets if self.tickets else None

    @property
    def gap(self) -> bool:
        """Many tickets and little coverage: a topic that needs a manual."""
        return self.tickets >= 5 and (self.articles == 0 or (self.coverage or 0) < 0.2)


def analytics(session, kb: KnowledgeBase, *, since: dt.datetime | None = None, locale: str = "ja",
              now: dt.datetime | None = None) -> tuple[list[ArticleStats], list[CategoryStats]]:
    stats: dict[str, ArticleStats] = {}
    for a in kb.articles:
        if a.slug not in stats or a.lang == locale:
            stats[a.slug] = ArticleStats(a.slug, a.role, a.title, a.category)

    def get(slug: str) -> ArticleStats:
        if slug not in stats:
            stats[slug] = ArticleStats(slug, "?", slug, None)
        return stats[slug]

    q = select(ArticleView.slug, func.count()).group_by(ArticleView.slug)
    if since:
        q = q.where(ArticleView.at >= since)
    for slug, n in session.execute(q):
        get(slug).views = n
    q = select(ArticleFeedback.slug, ArticleFeedback.helpful, func.count()).group_by(ArticleFeedback.slug,
                                                                                   ArticleFeedback.helpful)
    if since:
        q = q.where(ArticleFeedback.created_at >= since)
    for slug, helpful, n in session.execute(q):
        if helpful:
            get(slug).helpful = n
        else:
            get(slug).not_helpful = n
    q = (select(TicketArticle.slug, func.count(), func.sum(case((TicketArticle.resolved_by.is_(True), 1), else_=0)))
         .group_by(TicketArticle.slug))
    if since:
        q = q.where(TicketArticle.linked_at >= since)
    for slug, n, resolved in session.execute(q):
        get(slug).linked = n
        get(slug).resolved = int(resolved or 0)
    for slug, n in deflection_counts(session, now).items():
        get(slug).deflections = n
    articles = sorted(stats.values(), key=lambda s: (-s.views, -s.linked, s.slug))

    articles_per_cat: dict[str, int] = {}
    for s in stats.values():
        if s.category:
            articles_per_cat[s.category] = articles_per_cat.get(s.category, 0) + 1
    tq = (select(Category.code, Category.name_ja, Category.name_en, func.count(Ticket.id))
          .join(Ticket, Ticket.category_id == Category.id).group_by(Category.code, Category.name_ja, Category.name_en))
    lq = (select(Category.code, func.count(func.distinct(Ticket.id))).join(Ticket, Ticket.category_id == Category.id)
          .join(TicketArticle, TicketArticle.ticket_id == Ticket.id).group_by(Category.code))
    if since:
        tq = tq.where(Ticket.created_at >= since)
        lq = lq.where(Ticket.created_at >= since)
    linked = dict(session.execute(lq).all())
    cats = [CategoryStats(code, name_en if locale == "en" else name_ja, n, linked.get(code, 0),
                          articles_per_cat.get(code, 0))
            for code, name_ja, name_en, n in session.execute(tq)]
    cats.sort(key=lambda c: (not c.gap, -c.tickets, c.code))
    return articles, cats

