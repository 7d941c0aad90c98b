"""Queue filters, keyset pagination, scoping and Japanese/English full-text search (SQLite and PostgreSQL)."""
import datetime as dt

import pytest
from werkzeug.datastructures import MultiDict

from helpdesk.audit import Actor
from helpdesk.tickets import queue, search, service
from helpdesk.tickets.models import Ticket


def _f(**kwargs):
    return queue.parse_filters(MultiDict([(k, v) for k, vs in kwargs.items()
                                          for v in (vs if isinstance(vs, list) else [vs])]))


def _refs(page):
    return [t.ref for t in page.items]


def test_parse_filters_reports_every_bad_field():
    with pytest.raises(queue.FilterError) as err:
        queue.parse_filters({"status": "open,bogus", "priority": "P7", "created_from": "2026/01/01",
                             "assignee": "someone", "sort": "random", "role": "hospital"})
    assert set(err.value.field_errors) == {"status", "priority", "created_from", "assignee", "sort", "role"}
    f = queue.parse_filters({"status": ["open", "pending"], "tags": "a, b", "assignee": "me", "q": "印刷"})
    assert f.statuses == ["open", "pending"] and f.tags == ["a", "b"] and f.assignee == "me"
    assert f.sort == "relevance"  # a search sorts by relevance unless told otherwise
    assert queue.parse_filters({"status": "active"}).statuses == ["new", "open", "pending", "escalated"]
    with pytest.raises(queue.FilterError) as err:
        queue.parse_filters({"created_from": "2026-05-02", "created_to": "2026-05-01"})
    assert "created_to" in err.value.field_errors


def test_filters_combine(db, make_org, make_user, make_ticket, agent):
    city = make_org(kind="municipality", code="131999")
    clinic = make_org(kind="clinic")
    a = make_ticket(requester=make_user(org=city), subject="割当", category="allocation", priority="P1", tags=["急ぎ"])
    b = make_ticket(requester=make_user(org=clinic), subject="納品", category="delivery", priority="P3")
    actor = Actor.for_user(agent)
    service.assign(db.session, b.id, agent.id, actor)
    service.escalate(db.session, a.id, "L2", "要確認", actor)
    assert _refs(queue.query_tickets(db.session, agent, _f(role="municipality"))) == [a.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(category="delivery"))) == [b.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(priority="P1", tier="L2"))) == [a.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(assignee="me"))) == [b.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(assignee="none"))) == [a.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(organisation="131999"))) == [a.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(organisation="nope"))) == []
    assert _refs(queue.query_tickets(db.session, agent, _f(tags="急ぎ"))) == [a.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(status="escalated"))) == [a.ref]


def test_created_range_is_tokyo_days(db, make_ticket, agent):
    utc = dt.timezone.utc
    # 2026-04-01 23:30 JST = 14:30 UTC; 2026-04-02 00:30 JST = 2026-04-01 15:30 UTC
    late = make_ticket(subject="late", created_at=dt.datetime(2026, 4, 1, 14, 30, tzinfo=utc))
    early = make_ticket(subject="early", created_at=dt.datetime(2026, 4, 1, 15, 30, tzinfo=utc))
    assert _refs(queue.query_tickets(db.session, agent, _f(created_from="2026-04-01", created_to="2026-04-01"))) == [late.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(created_from="2026-04-02"))) == [early.ref]


@pytest.mark.parametrize("sort", ["-created", "created", "priority", "updated", "due"])
def test_keyset_pagination_visits_every_ticket_once(db, make_org, make_user, make_ticket, agent, sort):
    org = make_org()
    user = make_user(org=org)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    made = []
    for i in range(23):
        # Equal timestamps in pairs: the id tie-breaker must keep pages disjoint.
        t = make_ticket(requester=user, subject=f"件名{i}", priority=f"P{i % 4 + 1}",
                        created_at=base + dt.timedelta(hours=i // 2))
        if i % 3 == 0:
            t.resolution_due_at = base + dt.timedelta(days=i % 5)
        made.append(t.id)
    db.session.commit()
    seen, cursor, pages = [], None, 0
    while True:
        page = queue.query_tickets(db.session, agent, _f(sort=sort), cursor=cursor, limit=5)
        seen += [t.id for t in page.items]
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen)) and pages == 5
    if sort == "-created":
        created = [db.session.get(Ticket, i).created_at for i in seen]
        assert created == sorted(created, reverse=True)
    if sort == "priority":
        prios = [db.session.get(Ticket, i).priority for i in seen]
        assert prios == sorted(prios)


def test_bad_cursor_is_a_filter_error(db, agent):
    with pytest.raises(queue.FilterError):
        queue.query_tickets(db.session, agent, _f(), cursor="garbage!!")
    other = queue._encode_cursor("created", [dt.datetime.now(dt.timezone.utc), 1])
    with pytest.raises(queue.FilterError):  # a cursor of another sort order
        queue.query_tickets(db.session, agent, _f(), cursor=other)


def test_counts_are_capped(db, make_ticket, agent):
    for i in range(5):
        make_ticket(subject=f"c{i}")
    assert str(queue.count_tickets(db.session, agent, _f(), cap=10)) == "5"
    capped = queue.count_tickets(db.session, agent, _f(), cap=3)
    assert capped.capped and str(capped) == "3+"


def test_requester_never_gets_another_orgs_ticket_from_queue_or_search(db, make_org, make_user, make_ticket):
    city = make_org(kind="municipality")
    mine, child, other = make_org(kind="clinic", parent=city), make_org(kind="clinic", parent=city), make_org(kind="clinic")
    me, city_user, stranger = make_user(org=mine), make_user(org=city), make_user(org=other)
    t_mine = make_ticket(requester=me, subject="ログインができません 自院")
    t_child = make_ticket(requester=make_user(org=child), subject="ログインができません 隣院")
    t_other = make_ticket(requester=stranger, subject="ログインができません 他院")
    for filters in (_f(), _f(q="ログイン"), _f(q="ログインできない"), _f(q="他院"), _f(organisation=other.code)):
        refs = _refs(queue.query_tickets(db.session, me, filters))
        assert t_other.ref not in refs and t_child.ref not in refs
        assert queue.count_tickets(db.session, me, filters).value <= 1
    assert set(_refs(queue.query_tickets(db.session, city_user, _f(q="ログイン")))) == {t_mine.ref, t_child.ref}
    assert _refs(queue.query_tickets(db.session, stranger, _f(q="自院"))) == []


def test_search_japanese_inflection_ranks_the_right_ticket_high(db, make_ticket, agent):
    target = make_ticket(subject="ログインについて", body="昨日からログインができません。初期パスワードです。")
    noise = [make_ticket(subject=s, body=b) for s, b in [
        ("ログイン画面の表示", "ログイン画面のロゴが古い"), ("納品予定日が表示されない", "納品日が空欄"),
        ("ログイン後のメニュー", "メニューの並び順を変えたい"), ("パスワード変更", "変更方法を知りたい"),
        ("割当数量", "割当を増やしたい"), ("ログイン履歴", "ログイン履歴を見たい")]]
    page = queue.query_tickets(db.session, agent, _f(q="ログインできない"))
    refs = _refs(page)
    assert target.ref in refs[:3]
    assert refs[0] == target.ref  # "でき" also matches: it outranks tickets that only say ログイン
    assert noise[1].ref not in refs  # no shared content term: not a result
    assert page.scores[target.id] > page.scores[noise[0].id]


def test_search_english_is_case_insensitive_and_full_width_matches(db, make_ticket, agent):
    t = make_ticket(subject="Cannot SAVE delivery", body="The Delivery completion screen shows Error E1023")
    for q in ("delivery", "DELIVERY", "Delivery completion", "ｄｅｌｉｖｅｒｙ", "e1023"):
        assert t.ref in _refs(queue.query_tickets(db.session, agent, _f(q=q))), q


def test_search_one_and_two_character_japanese(db, make_ticket, agent):
    a = make_ticket(subject="帳票の印刷ができない", body="印刷ボタンが反応しません")
    b = make_ticket(subject="廃棄報告", body="廃棄数量の訂正")
    assert _refs(queue.query_tickets(db.session, agent, _f(q="印刷"))) == [a.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(q="廃"))) == [b.ref]
    assert _refs(queue.query_tickets(db.session, agent, _f(q="印刷ボタン"))) == [a.ref]
    # Full-width / half-width katakana forms are the same after NFKC.
    c = make_ticket(subject="ﾛｸﾞｲﾝ画面", body="半角カナで書かれた問い合わせ")
    assert c.ref in _refs(queue.query_tickets(db.session, agent, _f(q="ログイン")))


def test_search_finds_replies_and_paginates_by_score(db, make_ticket, agent):
    t = make_ticket(subject="質問", body="よろしく")
    service.add_comment(db.session, t.id, "証明書エラーの件は解決しました", Actor.for_user(agent))
    assert _refs(queue.query_tickets(db.session, agent, _f(q="証明書"))) == [t.ref]
    for i in range(7):  # the compound itself, or two of its bigrams (「配送の状況」)
        make_ticket(subject=f"配送の遅れ {i}", body="配送状況を確認したい" if i % 2 else "配送の状況を知りたい")
    unrelated = {make_ticket(subject="配送の遅れ", body="届かない").id for _ in range(2)}  # only 「配送」
    seen, cursor = [], None
    while True:
        page = queue.query_tickets(db.session, agent, _f(q="配送状況"), cursor=cursor, limit=3)
        seen += [(page.scores[x.id], x.id) for x in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == 7 and len({i for _, i in seen}) == 7
    assert not unrelated & {i for _, i in seen}
    assert [s for s, _ in seen] == sorted((s for s, _ in seen), reverse=True)
    assert seen[0][0] > seen[-1][0]  # the whole compound ranks above its parts


def test_search_with_other_sort_and_empty_query(db, make_ticket, agent):
    make_ticket(subject="古い 配送", created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    new = make_ticket(subject="新しい 配送")
    page = queue.query_tickets(db.session, agent, _f(q="配送", sort="-created"))
    assert _refs(page)[0] == new.ref and not page.scores
    assert queue.parse_filters({"q": "   "}).q == ""
    assert _refs(queue.query_tickets(db.session, agent, _f(q="!!!"))) == []


def test_parse_query_terms():
    q = search.parse_query("ログインできない")
    assert [t.text for t in q.terms if t.strong] == ["ログイン"]
    assert {"できない", "でき"} <= {t.text for t in q.terms}
    assert [t.text for t in search.parse_query("Password RESET the").terms] == ["password", "reset"]
    assert "記録" in {t.text for t in search.parse_query("接種記録入力").terms}
    assert search.score_in_python("ログインができません", q) > search.score_in_python("ログイン画面", q)


def test_similar_open_tickets_same_org(db, make_org, make_user, make_ticket):
    org, other = make_org(), make_org()
    user = make_user(org=org)
    t1 = make_ticket(requester=user, subject="納品予定日が表示されない", body="希望数量を登録したが納品予定日が空欄")
    make_ticket(requester=user, subject="パスワード変更", body="変更方法")
    make_ticket(requester=make_user(org=other), subject="納品予定日が表示されない", body="同じ内容")
    found = service.similar_open_tickets(db.session, org.id, "納品予定日が出ない")
    assert [s.ticket.id for s in found] == [t1.id] and 0 < found[0].score <= 1
    service.change_status(db.session, t1.id, "resolved", Actor.system())
    assert service.similar_open_tickets(db.session, org.id, "納品予定日が出ない") == []


def test_one_term_search_pages_in_recency_order(db, make_ticket, agent):
    made = [make_ticket(subject=f"印刷の件 {i}", created_at=dt.datetime(2026, 3, 1 + i, tzinfo=dt.timezone.utc)).id
            for i in range(7)]
    make_ticket(subject="関係ない件")
    seen, cursor = [], None
    while True:
        page = queue.query_tickets(db.session, agent, _f(q="印刷"), cursor=cursor, limit=3)
        seen += [t.id for t in page.items]
        assert set(page.scores.values()) <= {search.WEIGHT_STRONG}
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == list(reversed(made))
