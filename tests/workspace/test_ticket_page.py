"""The ticket page in words: readable timeline, translated states, linkified replies, context, merged replies."""
import re

from helpdesk.audit import Actor
from helpdesk.tickets import display, service


def test_timeline_reads_in_words_with_display_names(db, client, login, agent, make_user, make_ticket):
    jiro = make_user(roles="agent", email="jiro@helpdesk.example.jp", name="受付 二郎")
    ticket = make_ticket()
    actor = Actor(agent.id, agent.email)
    service.update_fields(db.session, ticket.id, actor, assignee_id=jiro.id, priority="P1", category="login")
    service.escalate(db.session, ticket.id, "L2", "画面の不具合の可能性", actor)
    login(agent)
    html = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", "", html)
    assert "担当者: 未割当 → 受付 二郎" in text
    assert "優先度: P3 通常 → P1 緊急" in text
    assert "ステータス: 新規 → 対応中" in text
    assert "エスカレーション: L1（一次対応） → L2（専門担当）" in text
    assert "jiro@helpdesk.example.jp" not in text.split("経過", 1)[1].split("返信・内部メモ", 1)[0]
    # Times are JST, minutes only.
    times = re.findall(r'<time datetime="[^"]+">([^<]+)</time>', html)
    assert times and all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", t) for t in times)
    assert "+09:00" in html and "." not in re.findall(r'datetime="([^"]+)"', html)[0][:19]
    assert "利用中" in text or "招待済み" in text  # the account state is translated


def test_urls_in_replies_are_links_and_nothing_else_is(db, client, login, agent, make_ticket):
    ticket = make_ticket()
    service.add_comment(db.session, ticket.id, "手順は https://vds.example.jp/manual?a=1&b=2。<script>x</script> "
                        "javascript:alert(1)", Actor(agent.id, agent.email))
    login(agent)
    html = client.get(f"/tickets/{ticket.ref}").get_data(as_text=True)
    assert ('<a href="https://vds.example.jp/manual?a=1&amp;b=2" rel="noopener noreferrer nofollow" '
            'target="_blank">https://vds.example.jp/manual?a=1&amp;b=2</a>。') in html
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html


def test_linkify_unit():
    assert str(display.linkify("see http://a.example/x, ok")) == (
        'see <a href="http://a.example/x" rel="noopener noreferrer nofollow" target="_blank">http://a.example/x</a>, ok')
    assert str(display.linkify('"><img src=x onerror=1>')) == "&#34;&gt;&lt;img src=x onerror=1&gt;"


def test_context_lists_requester_and_organisation_tickets_open_first(db, client, login, agent, make_org, make_user,
                                                                     make_ticket):
    org = make_org()
    alice, bob = make_user(org=org, name="依頼 花子"), make_user(org=org, name="同僚 太郎")
    old = make_ticket(requester=alice, subject="古い解決済みの件")
    service.change_status(db.session, old.id, "resolved", Actor(agent.id, agent.email))
    mine_open = make_ticket(requester=alice, subject="依頼者の未解決の件")
    colleague = make_ticket(requester=bob, subject="同僚の件")
    current = make_ticket(requester=alice, subject="今の件")
    ctx = display.context_tickets(db.session, current)
    assert [t.id for t in ctx["requester"]] == [mine_open.id, old.id]
    assert [t.id for t in ctx["organisation"]] == [colleague.id]
    login(agent)
    html = client.get(f"/tickets/{current.ref}").get_data(as_text=True)
    section = html.split('id="context"', 1)[1].split("</section>", 1)[0]
    assert f'href="/tickets/{mine_open.ref}"' in section and "依頼者の未解決の件" in section
    assert section.index(mine_open.ref) < section.index(old.ref)
    assert "同僚の件" in section and "解決済み" in section


def test_target_timeline_shows_merged_replies_marked(db, client, login, agent, make_ticket):
    source, target = make_ticket(subject="元の件"), make_ticket(subject="統合先の件")
    actor = Actor(agent.id, agent.email)
    service.add_comment(db.session, source.id, "統合前の内部メモ", actor, public=False)
    service.merge_tickets(db.session, source.id, target.id, actor)
    login(agent)
    html = client.get(f"/tickets/{target.ref}").get_data(as_text=True)
    item = html.split("統合前の内部メモ")[0].rsplit("<li", 1)[1]
    assert "merged" in item and f"統合元 {source.ref}" in item
