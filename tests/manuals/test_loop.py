"""The knowledge loop: search log and content gaps, feedback prior with decay, drafts from tickets,
publication as manual files, article effects. Runs on SQLite and on PostgreSQL (HELPDESK_TEST_DATABASE_URL)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from helpdesk.audit import Actor
from helpdesk.common import utcnow
from helpdesk.insights.models import Problem, RecurringGroup, RecurringMember
from helpdesk.manuals import loop, service
from helpdesk.manuals.models import ArticleView, Deflection, KbSearch, ManualArticle, ManualDraft
from helpdesk.tickets import service as tickets
from helpdesk.tickets.models import TicketArticle
from knowledge_base import KnowledgeBase

TOKEN = "t" * 32


@pytest.fixture
def kb(manuals_dir):
    return service.get_kb(manuals_dir, force=True)


def _search(db, kb, text, *, user=None, source="portal", token=None, role="clinic"):
    hits = kb.suggest(text, role=role, k=5)
    return loop.log_search(db.session, source=source, query=text, hits=hits, user=user, role=role, token=token)


def test_log_search_masks_and_keeps_one_row_per_typing_session(db, kb, make_user):
    user = make_user(name="山田 花子")
    _search(db, kb, "山田です。電話 03-1234-5678 パスワード", user=user, token=TOKEN)
    _search(db, kb, "山田です。電話 03-1234-5678 パスワードを忘れました", user=user, token=TOKEN)
    rows = db.session.scalars(select(KbSearch)).all()
    assert len(rows) == 1
    assert "03-1234-5678" not in rows[0].query and "山田" not in rows[0].query
    assert "[電話番号]" in rows[0].query and "忘れました" in rows[0].query
    assert rows[0].top_slug == "password-reset" and rows[0].top_score > loop.GAP_COVERAGE
    assert loop.mark_clicked(db.session, slug="password-reset", token=TOKEN, user_id=user.id)
    assert db.session.scalar(select(KbSearch.clicked_slug)) == "password-reset"
    assert _search(db, kb, "abc") is None  # too short to mean anything


def test_gaps_grouped_by_topic_with_roles_and_reasons(db, kb, make_user, make_org, make_ticket):
    clinic = make_user(org=make_org(kind="clinic"))
    wholesaler = make_user(org=make_org(kind="wholesaler"))
    for i, (user, role) in enumerate([(clinic, "clinic"), (wholesaler, "wholesaler"), (clinic, "clinic")]):
        _search(db, kb, "温度ロガーのデータ送信エラー", user=user, role=role, token=f"{i}" * 20)
    _search(db, kb, "パスワードを忘れました", user=clinic, token="k" * 20)  # good answer ...
    loop.mark_clicked(db.session, slug="password-reset", token="k" * 20)  # ... and opened: no gap
    # a one-off search followed by a ticket by the same person
    sid = _search(db, kb, "納品の数量を登録", user=wholesaler, source="search", role="wholesaler")
    make_ticket(requester=wholesaler, subject="納品数量の登録について")
    loop.mark_ticket_submitted(db.session, token="2" * 20)

    since = utcnow() - dt.timedelta(days=1)
    rows = {r.query: reasons for r, reasons in loop.gap_rows(db.session, since=since)}
    assert "パスワードを忘れました" not in rows
    assert "low" in rows["温度ロガーのデータ送信エラー"]
    assert rows["納品の数量を登録"] == ["ticket"] or "ticket" in rows["納品の数量を登録"]
    assert sid is not None
    topics = loop.content_gaps(db.session, since=since)
    top = topics[0]
    assert top.count == 3 and top.roles["clinic"] == 2 and top.roles["wholesaler"] == 1
    assert top.label == "温度ロガー データ送信エラー"
    # the wholesaler's session is followed by their ticket; the third one was marked by the new-ticket page
    assert top.reasons["ticket"] == 2 and top.examples == ["温度ロガーのデータ送信エラー"]


def test_feedback_decay_and_prior(db, make_ticket, agent):
    assert loop.decay(dt.timedelta(0)) == 1.0
    assert loop.decay(loop.FEEDBACK_HALF_LIFE) == pytest.approx(0.5)
    assert loop.decay(3 * loop.FEEDBACK_HALF_LIFE) == pytest.approx(0.125)
    now = utcnow()
    t1, t2 = make_ticket(), make_ticket()
    db.session.add_all([
        TicketArticle(ticket_id=t1.id, slug="password-reset", resolved_by=True, linked_at=now),
        TicketArticle(ticket_id=t2.id, slug="account-locked", resolved_by=True, linked_at=now - dt.timedelta(days=30)),
        ArticleView(slug="account-locked", lang="ja", source="suggest", at=now),
        ArticleView(slug="account-locked", lang="ja", source="browse", at=now),  # browsing is not feedback
    ])
    db.session.commit()
    points = loop.feedback_points(db.session, now=now)
    assert points["password-reset"] == pytest.approx(3.0)
    assert points["account-locked"] == pytest.approx(1.5 + 0.5)
    prior = loop.prior_from_points(points)
    assert 0 < prior["account-locked"] < prior["password-reset"] < loop.FEEDBACK_MAX_BOOST


@pytest.fixture
def resolved_group(db, make_org, make_user, make_ticket, agent):
    org = make_org(kind="wholesaler")
    actor = Actor(agent.id, agent.email)
    group = RecurringGroup(label="在庫数 CSV 取込エラー", top_terms=["在庫", "csv", "取込"], size=3, active=True,
                           roles={"wholesaler": 3})
    db.session.add(group)
    db.session.flush()
    refs = []
    for i, who in enumerate(["佐藤 一郎", "鈴木 次郎", "高橋 三郎"]):
        requester = make_user(org=org, name=who, email=f"req{i}@example.jp")
        t = make_ticket(requester=requester, subject=f"在庫CSVの取込でエラー{i}",
                        body=f"在庫数のCSVを取り込むとE2001が出ます。{who.split()[0]}です。連絡先 090-1234-567{i}")
        tickets.add_comment(db.session, t.id, "内部メモ: 顧客はExcelで保存していた", actor, public=False)
        tickets.add_comment(db.session, t.id, "お世話になっております。CSVを文字コードShift_JISで保存し直してください。"
                            "その後、在庫調整画面から再度取り込んでください。", actor)
        tickets.change_status(db.session, t.id, "resolved", actor)
        db.session.add(RecurringMember(group_id=group.id, ticket_id=t.id))
        refs.append(t.ref)
    problem = Problem(title="在庫CSV取込エラー", source_group_id=group.id)
    db.session.add(problem)
    db.session.commit()
    return group, refs, problem


def test_draft_from_group_masks_and_uses_public_replies(db, resolved_group, agent):
    group, refs, problem = resolved_group
    draft = loop.create_draft(db.session, Actor(agent.id, agent.email), group_id=group.id)
    assert draft.title_ja == "在庫数 CSV 取込エラー" and draft.role == "wholesaler"
    assert draft.problem_id == problem.id and len(draft.ticket_ids) == 3
    body = draft.body_ja
    assert "## こんな症状のときに" in body and "在庫CSVの取込でエラー0" in body
    assert "Shift_JISで保存し直してください" in body  # steps from the agents' public replies
    assert "内部メモ" not in body  # internal notes never reach a manual
    assert "090-1234" not in body and "佐藤" not in body and "お世話になっております" not in body
    assert [g.id for g, _, _ in loop.uncovered_groups(db.session)] == [group.id]


def test_draft_from_ticket_refs_errors_are_plain(db, resolved_group, agent):
    _, refs, _ = resolved_group
    actor = Actor(agent.id, agent.email)
    with pytest.raises(loop.LoopError, match="HD-000123 の形"):
        loop.create_draft(db.session, actor, ticket_refs=["abc"])
    with pytest.raises(loop.LoopError, match="見つかりません"):
        loop.create_draft(db.session, actor, ticket_refs=["HD-999999"])
    draft = loop.create_draft(db.session, actor, ticket_refs=refs[:2])
    assert len(draft.ticket_ids) == 2 and draft.group_id is None


def test_publish_writes_files_new_version_links_tickets(db, resolved_group, agent, manuals_dir):
    group, refs, problem = resolved_group
    actor = Actor(agent.id, agent.email)
    draft = loop.create_draft(db.session, actor, group_id=group.id)
    data = dict(slug="stock-csv-error", role="wholesaler", tags="在庫, CSV", title_ja="在庫CSVの取込エラー",
                body_ja=draft.body_ja, title_en="", body_en="")
    loop.save_draft(db.session, draft.id, actor, data, expected_version=draft.version)
    with pytest.raises(loop.LoopError) as err:
        loop.publish_draft(db.session, draft.id, actor, manuals_dir)
    assert err.value.field == "title_en"
    assert not (manuals_dir / "wholesaler" / "stock-csv-error.ja.md").exists()
    data.update(title_en="Stock CSV import errors", body_en="# Stock CSV import errors\n\nSave as Shift_JIS.\n")
    draft = loop.save_draft(db.session, draft.id, actor, data, expected_version=draft.version)
    with pytest.raises(loop.LoopError, match="ほかの編集者"):
        loop.save_draft(db.session, draft.id, actor, data, expected_version=draft.version - 1)
    draft = loop.publish_draft(db.session, draft.id, actor, manuals_dir)
    assert draft.status == "published" and draft.published_version == 1
    assert (manuals_dir / "wholesaler" / "stock-csv-error.en.md").exists()
    assert not list((manuals_dir / "wholesaler").glob(".*"))  # no temporary files left
    kb = KnowledgeBase.load(manuals_dir)
    assert kb.suggest("在庫CSVの取込でエラー", role="wholesaler")[0].slug == "stock-csv-error"
    row = db.session.scalar(select(ManualArticle).where(ManualArticle.slug == "stock-csv-error",
                                                        ManualArticle.lang == "ja"))
    assert row.version == 1 and row.role == "wholesaler"
    links = db.session.scalars(select(TicketArticle.ticket_id).where(TicketArticle.slug == "stock-csv-error")).all()
    assert sorted(links) == sorted(draft.ticket_ids)
    assert loop.uncovered_groups(db.session) == []
    # a second draft on the same slug publishes version 2
    d2 = loop.create_draft(db.session, actor, ticket_refs=refs[:1])
    data.update(body_ja="# 在庫CSVの取込エラー\n\n改訂版の手順。\n")
    loop.save_draft(db.session, d2.id, actor, data)
    d2 = loop.publish_draft(db.session, d2.id, actor, manuals_dir)
    assert d2.published_version == 2
    assert "version: 2" in (manuals_dir / "wholesaler" / "stock-csv-error.ja.md").read_text(encoding="utf-8")


def test_article_effects_before_after_and_deflection(db, resolved_group, agent, manuals_dir, make_ticket):
    group, refs, _ = resolved_group
    actor = Actor(agent.id, agent.email)
    draft = loop.create_draft(db.session, actor, group_id=group.id)
    loop.save_draft(db.session, draft.id, actor, dict(slug="stock-csv-error", role="wholesaler", tags="",
                    title_ja="在庫CSV", body_ja="# 在庫CSV\n\n手順。\n", title_en="Stock CSV", body_en="# Stock CSV\n\nSteps.\n"))
    draft = loop.publish_draft(db.session, draft.id, actor, manuals_dir)
    published = draft.published_at
    # the three group tickets were created "now" = before publication by microseconds; one more after
    later = make_ticket(subject="在庫CSVでまたエラー")
    db.session.add(RecurringMember(group_id=group.id, ticket_id=later.id))
    db.session.add_all([
        Deflection(token="a" * 20, slug="stock-csv-error", opened_at=published + dt.timedelta(minutes=1)),
        Deflection(token="b" * 20, slug="stock-csv-error", opened_at=published + dt.timedelta(minutes=2),
                   submitted_at=published + dt.timedelta(minutes=5)),
    ])
    db.session.commit()
    kb = KnowledgeBase.load(manuals_dir)
    effects = loop.article_effects(db.session, kb, now=published + dt.timedelta(days=14))
    e = next(e for e in effects if e.slug == "stock-csv-error")
    assert e.topic == "group" and e.before == 3 and e.after == 1 and e.days_after == 14
    assert e.deflections == 1
    assert e.after_per_week == pytest.approx(0.5) and e.change == pytest.approx(0.5 / 0.75 - 1)


# --- pages ------------------------------------------------------------------------------------

def test_drafts_and_gaps_are_for_editors_only(client, login, make_user, make_org, resolved_group, agent):
    group, _, _ = resolved_group
    draft = loop.create_draft(__import__("helpdesk.extensions", fromlist=["db"]).db.session,
                              Actor(agent.id, agent.email), group_id=group.id)
    requester = make_user(org=make_org(kind="wholesaler"))
    login(requester)
    for url in ("/manuals/gaps", "/manuals/drafts", f"/manuals/drafts/{draft.id}"):
        assert client.get(url).status_code == 403, url
    assert client.post("/manuals/drafts/new", data={"group_id": group.id}).status_code == 403
    # the draft's text is not searchable anywhere a requester can look
    page = client.get("/manuals", query_string={"q": draft.title_ja}).get_data(as_text=True)
    assert "faq-group" not in page and draft.title_ja not in page.split("検索結果")[1]
    client.get("/logout")
    login(agent)  # an L1 agent is staff but not a manual editor
    assert client.get("/manuals/drafts").status_code == 403


def test_editor_flow_over_http(client, db, login, make_user, resolved_group, manuals_dir):
    group, _, problem = resolved_group
    editor = make_user(roles="supervisor")
    login(editor)
    page = client.get("/manuals/gaps").get_data(as_text=True)
    assert "在庫数 CSV 取込エラー" in page and "記事の下書きを作成" in page
    resp = client.post("/manuals/drafts/new", data={"group_id": group.id})
    assert resp.status_code == 302
    draft = db.session.scalar(select(ManualDraft))
    url = f"/manuals/drafts/{draft.id}"
    form = dict(slug="stock-csv-error", role="wholesaler", tags="在庫", title_ja="在庫CSVの取込エラー",
                body_ja="# 在庫CSVの取込エラー\n\n1. **Shift_JIS** で保存します。\n<script>x</script>",
                title_en="", body_en="", expected_version=draft.version)
    resp = client.post(url, data={**form, "action": "preview"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<strong>Shift_JIS</strong>" in html and "<script>x" not in html
    form["expected_version"] = db.session.get(ManualDraft, draft.id).version
    resp = client.post(url, data={**form, "action": "publish"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "英語のタイトルを入力してください" in html and 'id="title_en-error"' in html
    form.update(title_en="Stock CSV import errors", body_en="# Stock CSV import errors\n\nSave as Shift_JIS.\n",
                expected_version=db.session.get(ManualDraft, draft.id).version)
    resp = client.post(url, data={**form, "action": "publish"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/manuals/wholesaler/stock-csv-error")
    assert "Shift_JIS" in client.get("/manuals/wholesaler/stock-csv-error").get_data(as_text=True)
    analytics = client.get("/manuals/analytics").get_data(as_text=True)
    assert "公開した記事の効果" in analytics and "在庫CSVの取込エラー" in analytics


def test_suggest_and_search_feed_the_log(client, db, login, make_user, make_org, manuals_dir):
    user = make_user(org=make_org(kind="clinic"))
    login(user)
    client.get("/manuals/suggest", query_string={"q": "パスワードを忘れました", "lt": TOKEN})
    client.get("/manuals/suggest", query_string={"q": "パスワードを忘れました。再設定メールが来ない", "lt": TOKEN})
    row = db.session.scalar(select(KbSearch))
    assert row.source == "portal" and row.role == "clinic" and "再設定メール" in row.query
    client.get("/manuals/common/password-reset", query_string={"src": "suggest", "lt": TOKEN})
    assert db.session.scalar(select(KbSearch.clicked_slug)) == "password-reset"
    client.post("/manuals/deflection/submitted", data={"token": TOKEN})
    assert db.session.scalar(select(KbSearch.ticket_at)) is not None
    client.get("/manuals", query_string={"q": "温度ロガーの設定"})
    logged = db.session.scalar(select(KbSearch).where(KbSearch.source == "search"))
    assert logged is not None and logged.top_score < loop.GAP_COVERAGE
