"""`helpdesk create-admin EMAIL`: the first administrator of a fresh production database (issue 12)."""
from __future__ import annotations

from sqlalchemy import select

from helpdesk.accounts.models import AuditLog, User

STRONG = "Kanri-Sha-2026!"


def _run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=["create-admin", *args], input=input)


def test_password_from_stdin_creates_an_admin_who_can_sign_in(app, db, client):
    result = _run(app, "First.Admin@Pref.example.jp", "--password-stdin", input=STRONG + "\n")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "first.admin@pref.example.jp"))
    assert user is not None and "admin" in user.roles.split() and user.password_hash != STRONG
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "user.admin_granted",
                                                    AuditLog.object_id == str(user.id))) is not None
    response = client.post("/login", data={"email": "first.admin@pref.example.jp", "password": STRONG})
    assert response.status_code == 302
    assert client.get("/accounts/users").status_code == 200  # an admin-only page


def test_prompt_asks_twice_and_refuses_a_mismatch(app, db):
    result = _run(app, "twice@pref.example.jp", input=f"{STRONG}\n{STRONG}x\n{STRONG}\n{STRONG}\n")
    assert "一致しません" in result.output  # asked again after the mismatch
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(User).where(User.email == "twice@pref.example.jp")) is not None


def test_weak_password_refused_with_the_ui_policy(app, db):
    for weak in ("short1!", "alllowercaseletters", "twice-weak@pref"):
        result = _run(app, "weak@pref.example.jp", "--password-stdin", input=weak + "\n")
        assert result.exit_code != 0
        assert "パスワード" in result.output
    assert db.session.scalar(select(User).where(User.email == "weak@pref.example.jp")) is None


def test_existing_account_gets_the_role_and_new_password(app, db, make_user):
    user = make_user(roles="agent", email="promote@helpdesk.example.jp")
    result = _run(app, "promote@helpdesk.example.jp", "--password-stdin", input=STRONG + "\n")
    assert result.exit_code == 0, result.output
    db.session.refresh(user)
    assert set(user.roles.split()) == {"agent", "admin"}


def test_bad_email_refused(app, db):
    result = _run(app, "not-an-email", "--password-stdin", input=STRONG + "\n")
    assert result.exit_code != 0 and "メールアドレス" in result.output
