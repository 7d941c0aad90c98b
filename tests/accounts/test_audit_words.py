"""Issue 16.9: the audit log in words — every action code named, details as sentences, filters, CSV export."""
from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import re
from pathlib import Path

from sqlalchemy import select

from helpdesk.accounts import audit_words, service
from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor, record

PACKAGE = Path(__file__).resolve().parents[2] / "helpdesk"


def _codes_written() -> set[str]:
    """Every literal action code passed to audit.record, plus the dynamic bulk/portal ones spelled out."""
    codes = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "record" \
                    and len(node.args) >= 3:
                for sub in ast.walk(node.args[2]):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str) \
                            and re.fullmatch(r"[a-z_]+\.[a-z_.]+", sub.value):
                        codes.add(sub.value)
    codes -= {"tickets.bulk_", "ticket.portal_"}  # f-string heads, listed below
    codes |= {f"tickets.bulk_{a}" for a in ("assign", "status", "priority", "category", "tag", "merge")}
    codes |= {"ticket.portal_resolve", "ticket.portal_close", "ticket.viewed", "user.viewed", "access.denied",
              "export.downloaded"}
    return codes


def test_every_action_code_has_a_name(app):
    codes = _codes_written()
    assert len(codes) > 60
    missing = sorted(codes - set(audit_words.ACTIONS))
    assert missing == []
    with app.test_request_context():
        assert audit_words.action_label("login.succeeded") == "ログイン成功"
        names = [audit_words.action_label(c) for c in codes]
        assert all(not re.fullmatch(r"[a-z_.]+", n) for n in names)


def test_unknown_codes_fall_back_to_readable_words(app):
    with app.test_request_context():
        assert audit_words.action_label("widget.frobbed_twice") == "widget: frobbed twice"
        assert audit_words.action_label("problem.new_thing") == "課題: new thing"
        assert audit_words.action_label("problem.viewed") == "課題を閲覧"
        assert audit_words.action_label("") == "—" and audit_words.action_label(None) == "—"
        assert audit_words.detail_lines("x.y", {"weird": object.__name__, "n": None}) == ["weird: object", "n: —"]
        assert audit_words.detail_lines("x.y", "plain") == ["plain"]


def test_details_read_as_sentences(app):
    with app.test_request_context():
        lines = audit_words.detail_lines("user.updated", {"changes": {"roles": ["agent", "agent supervisor"],
                                                                       "phone": [None, "03-1234"]}})
        assert lines == ["ロールを変更: オペレーター → オペレーター、スーパーバイザー", "電話番号を変更: — → 03-1234"]
        assert audit_words.detail_lines("problem.status", {"before": "accepted", "after": "fixed",
                                                           "fixed_on": None}) == \
            ["状態を変更: 受理済み → 修正済み", "修正日: —"]
        assert audit_words.detail_lines("user.disabled", {"before": "activated", "after": "disabled"}) == \
            ["状態を変更: 利用開始 → 無効"]
        locked = audit_words.detail_lines("user.locked", {"failed_logins": 5,
                                                          "locked_until": "2026-12-06T01:57:47.496308+00:00"})
        assert locked == ["失敗回数: 5", "ロック期限: 2026-12-06 10:57:47"]
        assert audit_words.detail_lines("login.failed", {"reason": "unknown"}) == ["理由: 登録のないログインID"]
        denied = audit_words.detail_lines("access.denied", {"endpoint": "tickets.detail", "method": "GET",
                                                            "status": 404, "args": {"ref": "HD-000001"},
                                                            "result": "denied"})
        assert denied == ["結果: 拒否 (HTTP 404)", "番号: HD-000001"]
        hours = audit_words.detail_lines("sla.policy_saved", {"before": None, "after": {"priority": "P1",
                                                                                          "first_response": 60}})
        assert hours == ["優先度を変更: — → P1", "初回応答を変更: — → 60"]
    with app.test_request_context(headers={"Accept-Language": "en"}):
        from flask_babel import refresh

        refresh()


def test_audit_page_in_words_with_filters(client, db, make_user, login):
    admin = make_user(roles="admin", email="root@helpdesk.example.jp", name="管理 太郎")
    agent = make_user(roles="agent", email="op@helpdesk.example.jp", name="受付 花子")
    login(admin)
    service.update_user(db.session, agent.id, Actor.for_user(admin, "192.0.2.9"), roles=["agent", "supervisor"])
    html = client.get("/admin/audit?actor=管理").get_data(as_text=True)
    table = html.split('id="audit"')[1]
    assert "利用者情報を変更" in table and "user.updated" not in table
    assert "ロールを変更: オペレーター → オペレーター、スーパーバイザー" in html
    assert "管理 太郎" in html and "<small>root@helpdesk.example.jp</small>" in html
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}</td>", html) and ".496" not in html
    assert '<option value="login.succeeded">ログイン成功</option>' in html
    # the action filter is exact for a listed code: password_reset does not also match password_reset_requested
    record(db.session, Actor.for_user(admin), "user.password_reset_requested", "user", agent.id)
    record(db.session, Actor.for_user(admin), "user.password_reset", "user", agent.id)
    db.session.commit()
    only = client.get("/admin/audit?action=user.password_reset").get_data(as_text=True)
    assert "パスワードを再設定" in only and "パスワード再設定を依頼" not in only.split('id="audit"')[1]
    by_type = client.get("/admin/audit?object_type=user&actor=受付").get_data(as_text=True)
    assert "該当する記録はありません" in by_type  # the agent did nothing
    assert '<option value="user" selected>利用者</option>' in by_type


def test_audit_csv_export_is_translated_safe_and_audited(client, db, make_user, login):
    admin = make_user(roles="admin", email="root@helpdesk.example.jp", name="管理 太郎")
    login(admin)
    record(db.session, Actor(None, "=HYPERLINK(\"x\")"), "login.failed", "user", None, {"reason": "unknown"})
    db.session.commit()
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date().isoformat()
    response = client.post("/admin/audit/export", data={"action": "login.failed", "date_from": today})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:5] == ["日時", "実行者", "氏名", "IPアドレス", "操作"]
    assert rows[1][1] == "'=HYPERLINK(\"x\")" and rows[1][4] == "ログイン失敗" and rows[1][7] == "理由: 登録のないログインID"
    assert len(rows) == 2
    db.session.expire_all()
    exported = db.session.scalars(select(AuditLog).where(AuditLog.action == "audit.exported")).one()
    assert exported.actor_id == admin.id and exported.detail == {
        "filters": {"action": "login.failed", "date_from": today}, "rows": 1}
    assert client.get("/admin/audit/export").status_code == 405


def test_audit_export_needs_an_admin(client, make_user, login):
    login(make_user(roles="supervisor"))
    assert client.post("/admin/audit/export").status_code == 403
