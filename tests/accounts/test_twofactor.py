"""TOTP two-factor sign-in: enrolment with a server-side QR code, the code step of the real login form,
no replay, recovery codes, the administrator's per-role policy, audit rows."""
from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import func, select

from helpdesk.accounts import twofactor
from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor

PASSWORD = "Test-Passw0rd!"


def _audits(db, action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action))


def _start(client) -> str:
    assert "設定をはじめる" in client.get("/account/2fa").get_data(as_text=True)
    assert client.post("/account/2fa", data={"action": "start"}).status_code == 302
    return client.get("/account/2fa").get_data(as_text=True)


def _enrol(client, db, user) -> tuple[str, list[str]]:
    page = _start(client)
    assert "<svg" in page and 'aria-label="認証アプリに登録するための QR コード"' in page
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    wrong = client.post("/account/2fa", data={"action": "confirm", "code": "000000"})
    assert wrong.status_code == 400 and 'id="code-error"' in wrong.get_data(as_text=True)
    done = client.post("/account/2fa", data={"action": "confirm", "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def _login(client, user):
    return client.post("/login", data={"email": user.email, "password": PASSWORD})


def test_enrol_then_sign_in_with_a_code_never_twice(db, client, login, make_user):
    agent = make_user(roles="agent")
    login(agent)
    secret, codes = _enrol(client, db, agent)
    assert twofactor.is_enabled(db.session, agent.id)
    assert _audits(db, "security.twofactor_enabled") == 1
    client.post("/logout")

    # The real login form: the password alone no longer opens a session.
    first = _login(client, agent)
    assert first.status_code == 302 and first.headers["Location"].endswith("/login/2fa")
    assert client.get("/agent/queue").status_code == 302  # not signed in yet
    page = client.get("/login/2fa").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in page
    bad = client.post("/login/2fa", data={"code": "123"})
    assert bad.status_code == 401 and 'id="code-error"' in bad.get_data(as_text=True)
    # The code of the enrolment's own 30-second step was used up by it: the next step's code.
    assert client.post("/login/2fa", data={"code": pyotp.TOTP(secret).now()}).status_code == 401
    code = pyotp.TOTP(secret).at(time.time() + 30)
    ok = client.post("/login/2fa", data={"code": code})
    assert ok.status_code == 302
    assert client.get("/agent/queue").status_code == 200
    assert _audits(db, "login.twofactor") == 1 and _audits(db, "login.twofactor_failed") == 2
    client.post("/logout")

    # The same code again (replay within its 30 s) is refused.
    _login(client, agent)
    assert client.post("/login/2fa", data={"code": code}).status_code == 401
    # A recovery code works once.
    assert client.post("/login/2fa", data={"code": codes[0].upper()}).status_code == 302
    assert _audits(db, "security.recovery_code_used") == 1
    client.post("/logout")
    _login(client, agent)
    assert client.post("/login/2fa", data={"code": codes[0]}).status_code == 401


def test_five_wrong_codes_end_the_attempt(db, client, login, make_user):
    agent = make_user(roles="agent")
    login(agent)
    _enrol(client, db, agent)
    client.post("/logout")
    _login(client, agent)
    for _ in range(4):
        assert client.post("/login/2fa", data={"code": "000000"}).status_code == 401
    last = client.post("/login/2fa", data={"code": "000000"})
    assert last.status_code == 302 and last.headers["Location"].endswith("/login")
    assert client.get("/login/2fa").status_code == 302  # back to the password


def test_policy_forces_enrolment_for_the_chosen_roles(db, client, login, make_user):
    admin = make_user(roles="admin")
    login(admin)
    page = client.get("/admin/security/2fa").get_data(as_text=True)
    assert "オペレーター" in page and 'name="roles"' in page
    assert client.post("/admin/security/2fa", data={"roles": ["agent", "supervisor"]}).status_code == 302
    assert twofactor.required_roles(db.session) == {"agent", "supervisor"}
    assert _audits(db, "security.twofactor_policy") == 1
    assert client.post("/admin/security/2fa", data={"roles": ["requester"]}).status_code == 400
    client.post("/logout")

    agent = make_user(roles="agent")
    login(agent)
    blocked = client.get("/agent/queue")
    assert blocked.status_code == 302 and blocked.headers["Location"].endswith("/account/2fa")
    assert "二段階認証が必須です" in client.get("/account/2fa").get_data(as_text=True)
    page = _start(client)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    client.post("/account/2fa", data={"action": "confirm", "code": pyotp.TOTP(secret).now()})
    assert client.get("/agent/queue").status_code == 200
    # Required: it cannot be switched off.
    assert client.post("/account/2fa/disable", data={"code": "000000"}).status_code == 403
    client.post("/logout")

    requester = make_user(roles="requester")
    login(requester)
    assert client.get("/portal").status_code == 200  # not a required role


def test_disable_with_a_code_and_admin_only_policy(db, client, login, make_user):
    user = make_user(roles="specialist")
    login(user)
    assert client.get("/admin/security/2fa").status_code == 403
    secret, _codes = _enrol(client, db, user)
    wrong = client.post("/account/2fa/disable", data={"code": "000000"})
    assert wrong.status_code == 400 and twofactor.is_enabled(db.session, user.id)
    totp = pyotp.TOTP(secret)
    code = totp.at(time.time() + 30)  # the next step (the current one was used to enrol)
    assert client.post("/account/2fa/disable", data={"code": code}).status_code == 302
    assert not twofactor.is_enabled(db.session, user.id)
    assert _audits(db, "security.twofactor_disabled") == 1


def test_admin_reset(db, make_user):
    user = make_user(roles="agent")
    twofactor.begin_enrolment(db.session, user)
    row = twofactor.status(db.session, user.id)
    twofactor.confirm_enrolment(db.session, user, pyotp.TOTP(row.secret).now(), Actor.system("test"))
    twofactor.reset(db.session, user, Actor.system("test"))
    assert twofactor.status(db.session, user.id) is None
    assert twofactor.recovery_codes_left(db.session, user.id) == 0


def test_cli_reset(app, db, make_user):
    user = make_user(roles="agent", email="lost.phone@helpdesk.example.jp")
    twofactor.begin_enrolment(db.session, user)
    row = twofactor.status(db.session, user.id)
    twofactor.confirm_enrolment(db.session, user, pyotp.TOTP(row.secret).now(), Actor.system("test"))
    result = app.test_cli_runner().invoke(args=["reset-2fa", "Lost.Phone@helpdesk.example.jp"])
    assert result.exit_code == 0, result.output
    assert not twofactor.is_enabled(db.session, user.id)
    assert _audits(db, "security.twofactor_reset") == 1
    assert app.test_cli_runner().invoke(args=["reset-2fa", "nobody@example.jp"]).exit_code == 1
