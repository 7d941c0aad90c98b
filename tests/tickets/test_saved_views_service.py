"""Business rules that used to live in views: saved queue views and the merge version check (issue 14.6)."""
from __future__ import annotations

import pytest

from helpdesk.audit import Actor
from helpdesk.tickets import queue, saved_views, service
from helpdesk.tickets.models import SavedView


def test_save_overwrite_and_delete_a_view(db, agent, make_user):
    actor = Actor.for_user(agent)
    view = saved_views.save_view(db.session, agent, actor, "  至急の対応中  ", "status=active&priority=P1")
    assert view.name == "至急の対応中" and view.user_id == agent.id
    again = saved_views.save_view(db.session, agent, actor, "至急の対応中", "status=active&priority=P2")
    assert again.id == view.id and again.query == "status=active&priority=P2"
    other = make_user(roles="agent")
    assert [v.id for v in saved_views.visible_views(db.session, other)] == []
    assert not saved_views.delete_view(db.session, other, Actor.for_user(other), view.id)  # not theirs
    assert db.session.get(SavedView, view.id) is not None
    assert saved_views.delete_view(db.session, agent, actor, view.id)
    assert db.session.get(SavedView, view.id) is None


def test_an_invalid_query_is_not_saved(db, agent):
    with pytest.raises(queue.FilterError):
        saved_views.save_view(db.session, agent, Actor.for_user(agent), "壊れた条件", "priority=P9")
    assert saved_views.visible_views(db.session, agent) == []


def test_merge_refuses_a_source_changed_since_the_agent_saw_it(db, agent, make_ticket):
    source, target = make_ticket(subject="統合元"), make_ticket(subject="統合先")
    seen = source.version
    service.change_status(db.session, source.id, "open", Actor.for_user(agent))  # someone else, meanwhile
    with pytest.raises(service.VersionConflict):
        service.merge_tickets(db.session, source.id, target.id, Actor.for_user(agent), expected_version=seen)
    db.session.rollback()
    assert db.session.get(type(source), source.id).merged_into_id is None
    service.merge_tickets(db.session, source.id, target.id, Actor.for_user(agent),
                          expected_version=db.session.get(type(source), source.id).version)
    assert db.session.get(type(source), source.id).merged_into_id == target.id
