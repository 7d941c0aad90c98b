"""Manual articles in the database (synced from `manuals/`), their versions, feedback, views, deflections."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.common import TimestampMixin, UTCDateTime, utcnow
from helpdesk.extensions import db

ARTICLE_ROLES = ("municipality", "clinic", "wholesaler", "common")


class ManualArticle(db.Model):
    """The current text of one article in one language (slug + lang is unique)."""

    __tablename__ = "manual_articles"
    __table_args__ = (
        UniqueConstraint("slug", "lang", name="uq_manual_articles_slug_lang"),
        CheckConstraint(f"role IN {ARTICLE_ROLES!r}", name="role"),
        CheckConstraint("lang IN ('ja', 'en')", name="lang"),
        CheckConstraint("version >= 1", name="version"),
        Index("ix_manual_articles_role", "role", "lang"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), index=True)
    role: Mapped[str] = mapped_column(String(20))
    lang: Mapped[str] = mapped_column(String(2))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    summary: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(40))
    related: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Our version counter: +1 each time the file's content changes (the front matter's is kept in `doc_version`).
    version: Mapped[int] = mapped_column(Integer, default=1)
    doc_version: Mapped[int] = mapped_column(Integer, default=1)
    #: sha256 of the file bytes at the last sync.
    checksum: Mapped[str] = mapped_column(String(64))
    #: The front matter's `updated` date.
    updated: Mapped[dt.date] = mapped_column(Date)
    #: False when the file disappeared (kept for history, hidden from pages).
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    synced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    versions: Mapped[list[ManualArticleVersion]] = relationship(
        back_populates="article", order_by="ManualArticleVersion.version", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<ManualArticle {self.slug}.{self.lang} v{self.version}>"


class ManualArticleVersion(db.Model):
    """Every version of an article ever synced (never edited)."""

    __tablename__ = "manual_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version", name="uq_manual_article_versions"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("manual_articles.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    doc_version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    checksum: Mapped[str] = mapped_column(String(64))
    updated: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    article: Mapped[ManualArticle] = relationship(back_populates="versions")


class ArticleFeedback(db.Model):
    """"Was this helpful?" — one answer per user per article version (language-independent slug)."""

    __tablename__ = "article_feedback"
    __table_args__ = (UniqueConstraint("user_id", "slug", "version", "lang", name="uq_article_feedback_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), index=True)
    lang: Mapped[str] = mapped_column(String(2))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ArticleView(db.Model):
    """One opening of an article page."""

    __tablename__ = "article_views"
    __table_args__ = (Index("ix_article_views_slug_at", "slug", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120))
    lang: Mapped[str] = mapped_column(String(2))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: Where the reader came from: browse, search, suggest, related, direct.
    source: Mapped[str] = mapped_column(String(20), default="direct")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Deflection(db.Model):
    """A suggested article opened from the new-ticket page, under the page's client-side token.

    If no ticket is submitted under the same token within DEFLECTION_WINDOW of `opened_at`,
    the analytics query counts the row as a deflection (the requester found the answer).
    """

    __tablename__ = "deflections"
    __table_args__ = (UniqueConstraint("token", "slug", name="uq_deflections_token_slug"),
                      Index("ix_deflections_slug_opened", "slug", "opened_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), index=True)
    slug: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Set when the same token submitted a ticket afterwards.
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class KbSearch(db.Model):
    """One search or one typing session over the manuals, kept for the content-gap page.

    `query` is stored already masked (helpdesk.insights.pii.scrub) and never the raw text. Typing on a page
    (suggestions while writing a ticket) updates one row per page token with the latest text.
    """

    __tablename__ = "kb_searches"
    __table_args__ = (
        CheckConstraint("source IN ('search', 'portal', 'agent')", name="source"),
        UniqueConstraint("token", name="uq_kb_searches_token"),
        Index("ix_kb_searches_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: search = the manuals page; portal = a requester writing a ticket; agent = staff writing a ticket/reply.
    source: Mapped[str] = mapped_column(String(10))
    #: Page token of a typing session (None for a one-off search).
    token: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    #: municipality | clinic | wholesaler of the person (or the ticket for agents); None when unknown.
    role: Mapped[str | None] = mapped_column(String(20))
    query: Mapped[str] = mapped_column(Text)
    top_slug: Mapped[str | None] = mapped_column(String(120))
    top_score: Mapped[float] = mapped_column(Float, default=0.0)
    clicked_slug: Mapped[str | None] = mapped_column(String(120))
    clicked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: A ticket was submitted from the page of this typing session.
    ticket_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ManualDraft(TimestampMixin, db.Model):
    """An article being written from tickets; only editors see it, publishing writes the manual files."""

    __tablename__ = "manual_drafts"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published', 'discarded')", name="status"),
        CheckConstraint(f"role IN {ARTICLE_ROLES!r}", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="draft", index=True)
    slug: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    category: Mapped[str | None] = mapped_column(String(40))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    title_ja: Mapped[str] = mapped_column(String(300))
    body_ja: Mapped[str] = mapped_column(Text, default="")
    title_en: Mapped[str] = mapped_column(String(300), default="")
    body_en: Mapped[str] = mapped_column(Text, default="")
    group_id: Mapped[int | None] = mapped_column(ForeignKey("recurring_groups.id", ondelete="SET NULL"), index=True)
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id", ondelete="SET NULL"), index=True)
    ticket_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    published_version: Mapped[int | None] = mapped_column(Integer)
    #: Optimistic lock: two editors saving the same draft do not overwrite each other silently.
    version: Mapped[int] = mapped_column(Integer, default=1)
