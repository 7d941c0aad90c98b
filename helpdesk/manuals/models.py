"""Manual articles in the database (synced from `manuals/`), their versions, feedback, views, deflections."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.common import UTCDateTime, utcnow
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
