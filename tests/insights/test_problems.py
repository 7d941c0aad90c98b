"""Recurring groups in the database, problems and their lifecycle, evidence, fix impact."""
import datetime as dt
import re

import pytest

from helpdesk.audit import Actor
from helpdesk.insights import service
from helpdesk.insights.models import ProblemTicket, RecurringGroup, RecurringMember


@pytest.fixture
def grouped(db, import_lines, labelled_rows):
    import_lines(labelled_rows)
    service.refresh_groups(db.session)
    return labelled_rows


def _group_of(db, rows, label):
    """The stored group holding most tickets of the labelled group `label`."""
    from collections import Counter

    from helpdesk.tickets.models import Ticket

    wanted = [r["external_id"] for r in rows if r["group"] == label]
    gids = Counter(gid for (gid,) in db.session.query(RecurringMember.group_id).join(
        Ticket, Ticket.id == RecurringMember.ticket_id).filter(Ticket.external_id.in_(wanted)))
    return db.session.get(RecurringGroup, gids.most_common(1)[0][0]) if gids else None


def test_refresh_groups_stores_stats_and_keeps_ids_on_rerun(db, grouped):
    groups = service.list_groups(db.session)
    assert len(groups) >= 15
    g = groups[0]
    assert g.size == db.session.query(RecurringMember).filter_by(group_id=g.id).count() >= 3
    assert g.first_seen <= g.last_seen and sum(g.roles.values()) == g.size
    assert g.trend in ("rising", "stable", "falling") and len(g.weekly["counts"]) == 8
    assert g.representative_ticket_id is not None
    ids = {x.id for x in groups}
    service.refresh_groups(db.session)
    assert {x.id for x in service.list_groups(db.session)} == ids  # same tickets: same group rows


def test_rising_group_is_marked_rising(db, grouped):
    g = _group_of(db, grouped, "login_2fa_code")
    assert g is not None and g.trend == "rising"


def test_promote_links_group_tickets_and_new_tickets_follow(db, grouped, po, make_ticket):
    group = _group_of(db, grouped, "login_locked")
    actor = Actor.for_user(po)
    problem = service.promote_group(db.session, group.id, actor)
    assert problem.status == "candidate" and problem.source_group_id == group.id
    assert db.session.query(ProblemTicket).filter_by(problem_id=problem.id).count() == group.size
    # A new ticket about the same problem is assigned to the group and linked to the problem on arrival.
    ticket = make_ticket(subject="ロックされました",
                         body="パスワードを何度か間違えたらアカウントがロックされてしまいました。解除してください。")
    db.session.expire_all()
    assert db.session.query(RecurringMember).filter_by(ticket_id=ticket.id, group_id=group.id).count() == 1
    link = db.session.get(ProblemTicket, (problem.id, ticket.id))
    assert link is not None and link.source == "auto"
    assert [p.id for p in service.problems_for_ticket(db.session, ticket.id)] == [problem.id]
    # An unrelated new ticket joins nothing.
    other = make_ticket(subject="駐車場", body="説明会の会場に駐車場はありますか。")
    assert db.session.query(RecurringMember).filter_by(ticket_id=other.id).count() == 0


def test_problem_transitions_are_enforced(db, po):
    actor = Actor.for_user(po)
    p = service.create_problem(db.session, actor, title="テスト問題")
    with pytest.raises(service.InvalidTransition):
        service.transition_problem(db.session, p.id, "sent", actor)
    with pytest.raises(service.InvalidTransition):
        service.transition_problem(db.session, p.id, "verified", actor)
    service.transition_problem(db.session, p.id, "accepted", actor)
    with pytest.raises(service.InvalidTransition, match="開発トラッカーへ送ったときだけ"):
        service.transition_problem(db.session, p.id, "sent", actor)  # only sending sets it
    assert service.allowed_transitions(p) == ["candidate"]
    service.transition_problem(db.session, p.id, "sent", actor, sending=True)
    with pytest.raises(service.InsightsError, match="リリース日"):
        service.transition_problem(db.session, p.id, "fixed", actor)
    service.transition_problem(db.session, p.id, "fixed", actor, fixed_on=dt.date(2026, 10, 1))
    service.transition_problem(db.session, p.id, "verified", actor)
    assert p.status == "verified" and p.fixed_on == dt.date(2026, 10, 1) and p.verified_at is not None
    assert service.allowed_transitions(p) == ["accepted"]  # reopen, then send again
    with pytest.raises(service.InsightsError, match="ほかの人"):
        service.transition_problem(db.session, p.id, "accepted", actor, expected_version=1)
    from helpdesk.accounts.models import AuditLog

    actions = [a.action for a in db.session.query(AuditLog).filter_by(object_type="problem", object_id=str(p.id))]
    assert actions.count("problem.status") == 4


def test_evidence_pack_has_counts_codes_and_scrubbed_examples(db, grouped, po):
    group = service.list_groups(db.session)[0]
    problem = service.promote_group(db.session, group.id, Actor.for_user(po))
    pack = service.evidence(db.session, problem.id)
    assert pack["tickets"] == group.size == sum(w["total"] for w in pack["by_week"])
    assert sum(pack["by_role"].values()) == group.size
    assert all(set(o) == {"code", "tickets"} for o in pack["top_organisations"])
    assert 3 <= len(pack["examples"]) <= 5
    phone = re.compile(r"0\d{1,4}-\d{1,4}-\d{4}|0\d{9,10}|０\d")
    for ex in pack["examples"]:
        assert not phone.search(ex["body"]) and "@" not in ex["body"]
    md = service.evidence_markdown(pack)
    assert md.startswith("# ") and "## 週別件数" in md and group.label.split("・")[0] in md


def test_fix_impact_suggests_verified_and_flags_reappearance(db, import_lines, po):
    def rows(prefix, weeks_counts, start=dt.date(2026, 8, 3)):
        out = []
        for w, n in enumerate(weeks_counts):
            for i in range(n):
                day = start + dt.timedelta(weeks=w, days=i % 5)
                out.append({"external_id": f"{prefix}-{w}-{i}", "subject": "在庫一覧エラー", "body": "E500",
                            "org_code": "131016", "org_kind": "municipality", "channel": "web",
                            "created_at": f"{day.isoformat()}T10:00:00+09:00"})
        return out

    from helpdesk.tickets.models import Ticket

    actor = Actor.for_user(po)
    # 8 weeks of ~10 a week, fix released in week 9, then 4 quiet weeks.
    import_lines(rows("A", [10, 9, 11, 10, 12, 10, 9, 11, 6, 1, 0, 1, 0]))
    ids = [t.id for t in db.session.query(Ticket).filter(Ticket.external_id.like("A-%"))]
    p = service.create_problem(db.session, actor, title="在庫一覧", ticket_ids=ids)
    service.transition_problem(db.session, p.id, "accepted", actor)
    service.transition_problem(db.session, p.id, "sent", actor, sending=True)
    service.transition_problem(db.session, p.id, "fixed", actor, fixed_on=dt.date(2026, 10, 1))
    result = service.impact(db.session, p.id, today=dt.date(2026, 11, 5))
    assert result["fix_week"] == "2026-09-28"
    assert [w["count"] for w in result["before"]] == [10, 9, 11, 10, 12, 10, 9, 11]
    assert [w["count"] for w in result["after"]] == [1, 0, 1, 0]
    assert result["before_mean"] == 10.25 and result["after_mean"] == 0.5
    assert result["suggest_verified"] and not result["reappeared"]

    # The same issue comes back: 6 tickets two weeks later.
    import_lines(rows("B", [7], start=dt.date(2026, 11, 2)))
    new = [t.id for t in db.session.query(Ticket).filter(Ticket.external_id.like("B-%"))]
    for tid in new:
        service.link_ticket(db.session, p.id, tid, actor)
    result = service.impact(db.session, p.id, today=dt.date(2026, 11, 12))
    assert result["reappeared"] and not result["suggest_verified"]
