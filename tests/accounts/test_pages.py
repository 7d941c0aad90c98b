"""Activation dashboard, outreach CSV, user search and user page actions, admin pages, access by role."""
from __future__ import annotations

import csv
import datetime as dt
import io
import random

import pytest
from sqlalchemy import func, select

from helpdesk.accounts import service
from helpdesk.accounts.models import AuditLog, Organisation, User
from helpdesk.audit import Actor
from helpdesk.notify.models import Outbox

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def population(make_org, make_user):
    """Two municipalities: one where someone logged in, one where nobody did; a clinic with a locked user."""
    active = make_org(kind="municipality", code="131016", name="東京都千代田区", prefecture="東京都")
    silent = make_org(kind="municipality", code="271004", name="大阪府大阪市", prefecture="大阪府")
    clinic = make_org(kind="clinic", parent=silent, code="2710040001", name="なにわ中央医院", prefecture="大阪府")
    formula = make_org(kind="wholesaler", code="W0777", name="=HYPERLINK(\"http://x\")", prefecture="大阪府")
    users = {
        "active": make_user(org=active, name="佐藤 健一", state="activated", last_login_at=NOW, phone="03-1111-2222"),
        "active_invited": make_user(org=active, name="鈴木 恵子"),
        "silent": make_user(org=silent, name="高橋 誠", phone="06-3333-4444"),
        "locked": make_user(org=clinic, name="田中 直子", failed_logins=5, locked_at=NOW,
                            locked_until=NOW + dt.timedelta(minutes=30)),
        "formula": make_user(org=formula, name="+cmd|' /C calc'!A0", email="wholesale@example.jp"),
    }
    return {"orgs": {"active": active, "silent": silent, "clinic": clinic, "formula": formula}, "users": users}


def test_activation_stats_by_kind_and_prefecture(db, population):
    stats = service.activation_stats(db.session)
    kinds = {r["key"]: r for r in stats["by_kind"]}
    assert kinds["municipality"]["total"] == 3 and kinds["municipality"]["activated"] == 1
    assert kinds["municipality"]["invited"] == 2
    assert kinds["clinic"]["locked"] == 1
    prefs = {r["key"]: r for r in stats["by_prefecture"]}
    assert prefs["大阪府"]["total"] == 3 and prefs["大阪府"]["activated"] == 0
    assert stats["totals"]["total"] == 5


def test_outreach_lists_only_organisations_where_nobody_logged_in(db, population):
    rows, total = service.outreach_page(db.session, service.OutreachFilter())
    codes = {r["code"] for r in rows}
    assert codes == {"271004", "2710040001", "W0777"} and total == 3
    only_clinics, _ = service.outreach_page(db.session, service.OutreachFilter(kind="clinic"))
    assert [r["code"] for r in only_clinics] == ["2710040001"]
    by_name, _ = service.outreach_page(db.session, service.OutreachFilter(q="なにわ"))
    assert [r["code"] for r in by_name] == ["2710040001"]
    tokyo, total = service.outreach_page(db.session, service.OutreachFilter(prefecture="東京都"))
    assert tokyo == [] and total == 0


def test_outreach_contact_is_a_user_of_the_org(db, population):
    rows, _ = service.outreach_page(db.session, service.OutreachFilter(q="271004"))
    silent = next(r for r in rows if r["code"] == "271004")
    assert silent["contact_name"] == "高橋 誠" and silent["contact_phone"] == "06-3333-4444"


def test_outreach_paginates(db, make_org, make_user):
    for i in range(7):
        make_user(org=make_org(kind="wholesaler", code=f"WP{i:03d}"))
    first, total = service.outreach_page(db.session, service.OutreachFilter(), page=1, per_page=5)
    second, _ = service.outreach_page(db.session, service.OutreachFilter(), page=2, per_page=5)
    assert total == 7 and len(first) == 5 and len(second) == 2
    assert not {r["code"] for r in first} & {r["code"] for r in second}


def test_csv_export_neutralises_formulas_and_is_audited(client, db, population, make_user, login):
    login(make_user(roles="supervisor"))
    response = client.post("/accounts/activation/export", data={"prefecture": "大阪府"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "org_code"
    by_code = {r[0]: r for r in rows[1:]}
    assert set(by_code) == {"271004", "2710040001", "W0777"}
    assert by_code["W0777"][1].startswith("'=")
    assert by_code["W0777"][6].startswith("'+")
    for row in rows[1:]:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@"), cell
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "accounts.outreach_exported")).one()
    assert audit.detail["rows"] == 3 and audit.detail["filters"] == {"prefecture": "大阪府"}


def test_csv_export_needs_post(client, make_user, login):
    login(make_user(roles="supervisor"))
    assert client.get("/accounts/activation/export").status_code == 405


def test_dashboard_page_shows_figures_and_filters(client, population, make_user, login):
    login(make_user(roles="supervisor"))
    html = client.get("/accounts/activation?kind=clinic").get_data(as_text=True)
    assert "なにわ中央医院" in html and "大阪府大阪市" not in html.split('id="outreach"')[1]
    bad = client.get("/accounts/activation?kind=hospital&prefecture=火星")
    assert bad.status_code == 200 and "外しました" in bad.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/accounts/activation", "/admin", "/admin/audit", "/admin/users/new",
                                  "/admin/organisations", "/accounts/users", "/accounts/users/1"])
def test_requester_gets_403(client, make_user, login, path):
    login(make_user(roles="requester"))
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/admin", "/admin/audit", "/admin/users/new", "/admin/organisations"])
def test_agent_and_supervisor_cannot_open_admin_pages(client, make_user, login, path):
    login(make_user(roles="agent supervisor"))
    assert client.get(path).status_code == 403


def test_anonymous_is_sent_to_login(client):
    response = client.get("/accounts/activation")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_user_search_japanese_without_spaces_and_by_phone(client, population, make_user, login):
    login(make_user(roles="agent"))
    html = client.get("/accounts/users?q=佐藤健一").get_data(as_text=True)
    assert "佐藤 健一" in html
    assert "高橋 誠" in client.get("/accounts/users?q=0633334444").get_data(as_text=True)
    assert "高橋 誠" in client.get("/accounts/users?q=大阪市").get_data(as_text=True)
    assert "田中 直子" in client.get("/accounts/users?q=2710040001").get_data(as_text=True)
    html = client.get("/accounts/users?q=ＳＡＴＯ").get_data(as_text=True)  # full-width is folded (no match here)
    assert "0 件" in html


def test_user_search_filters_locked(db, population):
    users, total = service.search_users(db.session, "", state="locked")
    assert [u.name for u in users] == ["田中 直子"] and total == 1


def test_user_page_shows_what_an_agent_needs(client, population, make_user, login):
    login(make_user(roles="agent"))
    locked = population["users"]["locked"]
    html = client.get(f"/accounts/users/{locked.id}").get_data(as_text=True)
    assert "なにわ中央医院" in html and "ロック中" in html and "大阪府大阪市" in html
    assert 'id="user-failed">5<' in html
    assert "ロックを解除する" in html and "パスワード再設定リンクを送る" in html
    assert "アカウントを無効にする" not in html  # admins only


def test_agent_unlocks_and_sends_reset_link_audited(client, db, population, make_user, login):
    agent = make_user(roles="agent")
    login(agent)
    locked = population["users"]["locked"]
    assert client.post(f"/accounts/users/{locked.id}/unlock").status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, locked.id).is_locked()
    assert client.post(f"/accounts/users/{locked.id}/reset-link").status_code == 302
    assert db.session.scalar(select(func.count(Outbox.id)).where(Outbox.recipient == locked.email)) == 1
    actions = db.session.execute(select(AuditLog.action, AuditLog.actor_id).where(
        AuditLog.object_id == str(locked.id))).all()
    assert ("user.unlocked", agent.id) in actions and ("user.password_reset_requested", agent.id) in actions


def test_agent_cannot_act_on_staff_accounts(client, make_user, login):
    login(make_user(roles="agent"))
    admin = make_user(roles="admin")
    assert client.post(f"/accounts/users/{admin.id}/unlock").status_code == 403
    assert client.post(f"/accounts/users/{admin.id}/end-sessions").status_code == 403


def test_agent_cannot_disable(client, population, make_user, login):
    login(make_user(roles="agent"))
    assert client.post(f"/accounts/users/{population['users']['silent'].id}/disable").status_code == 403


def test_admin_disables_and_enables(client, db, population, make_user, login):
    admin = make_user(roles="admin")
    login(admin)
    target = population["users"]["active"]
    client.post(f"/accounts/users/{target.id}/disable")
    db.session.expire_all()
    assert db.session.get(User, target.id).state == "disabled"
    client.post(f"/accounts/users/{target.id}/enable")
    db.session.expire_all()
    assert db.session.get(User, target.id).state == "activated"
    # an admin cannot disable themselves
    client.post(f"/accounts/users/{admin.id}/disable")
    db.session.expire_all()
    assert db.session.get(User, admin.id).state != "disabled"


def test_admin_creates_user_and_edits_roles(client, db, population, make_user, login):
    admin = make_user(roles="admin")
    login(admin)
    response = client.post("/admin/users/new", data={"email": " New.Person@Example.JP ", "name": "新規　花子",
                                                     "org_code": "131016", "roles": ["requester"], "locale": "ja"})
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new.person@example.jp"))
    assert user.name == "新規 花子" and user.organisation.code == "131016" and user.state == "invited"
    bad = client.post("/admin/users/new", data={"email": "x@example.jp", "name": "x", "org_code": "NOPE",
                                                "roles": ["requester"], "locale": "ja"})
    assert "この組織コードは登録されていません" in bad.get_data(as_text=True)
    client.post(f"/admin/users/{user.id}/edit", data={"email": "ignored@example.jp", "name": "新規 花子",
                                                      "org_code": "", "roles": ["agent", "specialist"],
                                                      "locale": "en"})
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.roles == "agent specialist" and user.organisation_id is None and user.locale == "en"
    assert user.email == "new.person@example.jp"
    change = db.session.scalars(select(AuditLog).where(AuditLog.action == "user.updated",
                                                       AuditLog.object_id == str(user.id))).one()
    assert change.detail["changes"]["roles"] == ["requester", "agent specialist"]


def test_admin_cannot_drop_own_admin_role(db, make_user):
    admin = make_user(roles="admin")
    with pytest.raises(service.AccountError):
        service.update_user(db.session, admin.id, Actor.for_user(admin), roles=["agent"])


def test_admin_creates_clinic_under_municipality(client, db, population, make_user, login):
    login(make_user(roles="admin"))
    ok = client.post("/admin/organisations/new", data={"code": "1310160099", "name": "新しい医院", "kind": "clinic",
                                                       "prefecture": "東京都", "parent_code": ""})
    assert ok.status_code == 302
    clinic = db.session.scalar(select(Organisation).where(Organisation.code == "1310160099"))
    assert clinic.parent.code == "131016"
    orphan = client.post("/admin/organisations/new", data={"code": "ABC", "name": "孤立医院", "kind": "clinic",
                                                           "prefecture": "東京都", "parent_code": ""})
    assert orphan.status_code == 200 and "所属自治体" in orphan.get_data(as_text=True)


def test_audit_browser_filters(client, db, population, make_user, login):
    admin = make_user(roles="admin", email="root@helpdesk.example.jp")
    login(admin)
    service.unlock(db.session, population["users"]["locked"].id, Actor.for_user(admin, "192.0.2.7"))
    html = client.get("/admin/audit?action=user.unlock&actor=root@").get_data(as_text=True)
    assert "user.unlocked" in html and "192.0.2.7" in html
    none = client.get("/admin/audit?action=user.unlock&actor=someone-else").get_data(as_text=True)
    assert "該当する記録はありません" in none
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()
    later = (today + dt.timedelta(days=2)).isoformat()
    assert "該当する記録はありません" in client.get(f"/admin/audit?date_from={later}").get_data(as_text=True)
    bad = client.get("/admin/audit?date_from=2026-13-45")
    assert bad.status_code == 200 and "YYYY-MM-DD" in bad.get_data(as_text=True)


def test_audit_pages(client, db, make_user, login):
    login(make_user(roles="admin"))
    for i in range(60):
        db.session.add(AuditLog(actor_label="bulk", action="test.row", object_type="x", object_id=str(i)))
    db.session.commit()
    first = client.get("/admin/audit?action=test.").get_data(as_text=True)
    assert 'rel="next"' in first
    assert client.get("/admin/audit?action=test.&page=2").status_code == 200
    assert client.get("/admin/audit?action=test.&page=3").status_code == 404


def test_seed_accounts_is_realistic_and_bulk(db):
    from helpdesk.accounts.seed import seed_accounts

    made = seed_accounts(db.session, orgs=200, users=1000, rng=random.Random(3))
    assert made == {"orgs": 200, "users": 1000}
    kinds = dict(db.session.execute(select(Organisation.kind, func.count()).group_by(Organisation.kind)).all())
    assert kinds["municipality"] == 20 and kinds["clinic"] > 150 and kinds["wholesaler"] == 10
    muni_codes = db.session.scalars(select(Organisation.code).where(Organisation.kind == "municipality")).all()
    assert all(len(c) == 6 and c.isdigit() for c in muni_codes)
    clinics_without_parent = db.session.scalar(select(func.count(Organisation.id)).where(
        Organisation.kind == "clinic", Organisation.parent_id.is_(None)))
    assert clinics_without_parent == 0
    states = dict(db.session.execute(select(User.state, func.count()).group_by(User.state)).all())
    assert states["activated"] > 400 and states["invited"] > 250
    staff = db.session.scalar(select(func.count(User.id)).where(User.organisation_id.is_(None)))
    assert staff == 5
    # running again adds, never collides
    again = seed_accounts(db.session, users=100, rng=random.Random(3))
    assert again["users"] == 100


def test_demo_has_outreach_locked_and_invited_users(db, monkeypatch):
    import helpdesk.demo as demo

    monkeypatch.setattr(demo, "load_demo_tickets", lambda session: None)
    logins = demo.load_demo(db.session)
    assert ("locked", demo.LOCKED[0]) in logins
    rows, total = service.outreach_page(db.session, service.OutreachFilter())
    assert total >= 8
    prefectures = {r["key"] for r in service.activation_stats(db.session)["by_prefecture"]}
    assert {"東京都", "神奈川県", "大阪府", "北海道"} <= prefectures
    locked = db.session.scalar(select(User).where(User.email == demo.LOCKED[0]))
    assert locked.is_locked()
    assert demo.load_demo(db.session) == logins  # once only
