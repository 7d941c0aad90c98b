import datetime as dt
import json

import pytest
from sqlalchemy import select

from helpdesk.audit import Actor
from helpdesk.manuals import service
from helpdesk.manuals.models import ArticleFeedback, Deflection, ManualArticle, ManualArticleVersion


def _parse(html):
    from html.parser import HTMLParser

    tags, attrs = [], []

    class P(HTMLParser):
        def handle_starttag(self, tag, a):
            tags.append(tag)
            attrs.extend(a)

    P().feed(html)
    return tags, attrs


def test_nh3_strips_dangerous_html_even_if_markdown_let_it_through(monkeypatch):
    # Defence in depth: even with raw HTML enabled in the parser, nh3 removes what is dangerous.
    monkeypatch.setattr(service, "_MD", service.MarkdownIt("commonmark", {"html": True}))
    html = service.render_markdown('<p onclick="x()">a</p><script>alert(1)</script><a href="javascript:y()">l</a>').html
    tags, attrs = _parse(html)
    assert "script" not in tags and "alert(1)" not in html
    assert not [a for a in attrs if a[0].startswith("on") or "javascript" in (a[1] or "")]


def test_sanitising_removes_script_handlers_and_js_links():
    md = ("# 見出し\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
          "[クリック](javascript:alert(3)) [ok](https://example.jp/a) <a href=\"javascript:alert(4)\" onclick=\"x()\">a</a>\n\n"
          "![画像](javascript:alert(5))\n\n[data](data:text/html;base64,PHNjcmlwdD4=)\n")
    html = service.render_markdown(md).html
    tags, attrs = _parse(html)
    assert "script" not in tags
    assert not [a for a in attrs if a[0].startswith("on")]
    assert not [a for a in attrs if a[0] in ("href", "src") and not (a[1] or "").startswith(("https:", "http:", "/", "#"))]
    assert '<a href="https://example.jp/a" rel="noopener noreferrer">ok</a>' in html
    assert "&lt;script&gt;" in html  # raw HTML is shown as text, never executed


def test_toc_and_internal_links():
    md = ("# T\n\n## 手順\n\ntext [pw](../common/password-reset.ja.md#sec-1) [lock](../common/account-locked)\n\n"
          "### 詳細\n\n## エラー\n\n[ext](https://example.jp/x)\n")
    r = service.render_markdown(md, link_for=lambda role, slug: f"/manuals/{role or 'x'}/{slug}")
    assert [(lvl, label) for lvl, _a, label in r.toc] == [(2, "手順"), (3, "詳細"), (2, "エラー")]
    assert 'id="sec-2"' in r.html and 'href="/manuals/common/password-reset#sec-1"' in r.html
    assert 'href="/manuals/common/account-locked"' in r.html and 'href="https://example.jp/x"' in r.html


def test_sync_creates_version_only_on_change(db, manuals_dir):
    first = service.sync_manuals(db.session, manuals_dir)
    assert len(first.created) == 12 and first.unchanged == 0 and not first.errors
    again = service.sync_manuals(db.session, manuals_dir)
    assert again.created == [] and again.updated == [] and again.unchanged == 12
    path = manuals_dir / "clinic" / "desired-quantity.ja.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n追記: 締切は毎週金曜です。\n", encoding="utf-8")
    third = service.sync_manuals(db.session, manuals_dir)
    assert third.updated == ["desired-quantity.ja"] and third.unchanged == 11
    row = db.session.scalar(select(ManualArticle).where(ManualArticle.slug == "desired-quantity",
                                                        ManualArticle.lang == "ja"))
    assert row.version == 2
    vs = db.session.scalars(select(ManualArticleVersion).where(ManualArticleVersion.article_id == row.id)).all()
    assert sorted(v.version for v in vs) == [1, 2]
    diff = service.version_diff(db.session, "desired-quantity", "ja", 1, 2)
    assert ("+", "追記: 締切は毎週金曜です。") in diff


def test_sync_marks_removed_articles_inactive(db, manuals_dir):
    service.sync_manuals(db.session, manuals_dir)
    (manuals_dir / "clinic" / "desired-quantity.en.md").unlink()
    (manuals_dir / "clinic" / "desired-quantity.ja.md").unlink()
    summary = service.sync_manuals(db.session, manuals_dir)
    assert sorted(summary.deactivated) == ["desired-quantity.en", "desired-quantity.ja"]


def test_feedback_once_per_user_per_version(db, manuals_dir, make_user):
    user = make_user()
    actor = Actor.for_user(user)
    service.record_feedback(db.session, slug="password-reset", lang="ja", version=1, user_id=user.id, helpful=True,
                            comment="  わかりやすい\x00 ", actor=actor)
    with pytest.raises(service.AlreadyAnswered):
        service.record_feedback(db.session, slug="password-reset", lang="ja", version=1, user_id=user.id,
                                helpful=False, comment=None, actor=actor)
    # A new version of the article may be answered again.
    service.record_feedback(db.session, slug="password-reset", lang="ja", version=2, user_id=user.id, helpful=False,
                            comment=None, actor=actor)
    rows = db.session.scalars(select(ArticleFeedback).where(ArticleFeedback.user_id == user.id)).all()
    assert sorted((r.version, r.helpful) for r in rows) == [(1, True), (2, False)]
    assert rows[0].comment == "わかりやすい"


def test_deflection_counts_only_unsubmitted_after_window(db, manuals_dir, make_user):
    user = make_user()
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
    t_left, t_submitted, t_recent = "a" * 32, "b" * 32, "c" * 32
    for token in (t_left, t_submitted, t_recent):
        assert service.record_suggestion_opened(db.session, token=token, slug="password-reset", user_id=user.id)
    assert not service.record_suggestion_opened(db.session, token=t_left, slug="password-reset", user_id=user.id)
    assert not service.record_suggestion_opened(db.session, token="short", slug="password-reset", user_id=user.id)
    rows = {r.token: r for r in db.session.scalars(select(Deflection))}
    rows[t_left].opened_at = rows[t_submitted].opened_at = now - dt.timedelta(minutes=45)
    rows[t_recent].opened_at = now - dt.timedelta(minutes=10)
    db.session.commit()
    assert service.record_ticket_submitted(db.session, token=t_submitted, at=now - dt.timedelta(minutes=40)) == 1
    assert service.deflection_counts(db.session, now=now) == {"password-reset": 1}


def test_kb_suggest_json_shape(app, manuals_dir):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["kb", "suggest", "パスワードを忘れてログインできません", "--role", "clinic",
                                 "--limit", "3", "--json", "--dir", str(manuals_dir)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert isinstance(data, list) and 1 <= len(data) <= 3
    assert all(set(d) == {"slug", "title", "score"} for d in data)
    assert data[0]["slug"] == "password-reset"
    assert [d["score"] for d in data] == sorted((d["score"] for d in data), reverse=True)


def test_kb_check_exit_codes(app, manuals_dir):
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["kb", "check", "--dir", str(manuals_dir)])
    assert ok.exit_code == 0 and "6 articles" in ok.output
    p = manuals_dir / "clinic" / "desired-quantity.ja.md"
    p.write_text(p.read_text(encoding="utf-8").replace("role: clinic", "role: hospital"), encoding="utf-8")
    bad = runner.invoke(args=["kb", "check", "--dir", str(manuals_dir)])
    assert bad.exit_code == 1
    assert "desired-quantity.ja.md: role" in bad.output


def test_kb_sync_command(app, db, manuals_dir):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["kb", "sync", "--dir", str(manuals_dir)])
    assert out.exit_code == 0, out.output
    assert "12 created" in out.output
    out = runner.invoke(args=["kb", "sync", "--dir", str(manuals_dir)])
    assert "0 created, 0 updated (new version), 12 unchanged" in out.output
