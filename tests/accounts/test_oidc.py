"""OpenID Connect single sign-on for staff, against a real provider process on loopback.

The app's side runs in the Flask test client; the browser's trip to the provider (the /authorize
redirect and the way back) is made with `requests` against tests/accounts/oidc_provider.py, which runs
in its own process; the app itself calls the provider's discovery, token and JWKS endpoints over HTTP.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import func, select

from helpdesk.accounts import audit_words, oidc
from helpdesk.accounts.models import AuditLog, User
from helpdesk.accounts.oidc import UserIdentity
from tests.accounts.oidc_provider import running_provider

CALLBACK = "http://127.0.0.1:5000/login/sso/callback"  # BASE_URL of the test app + the callback path


@pytest.fixture(scope="module")
def provider():
    with running_provider([CALLBACK]) as running:
        yield running


@pytest.fixture
def sso(app, provider):
    """Configure the app for the provider (auto-create off); restore the settings afterwards."""
    saved = {k: app.config.get(k) for k in app.config if k.startswith("OIDC_")}
    keys = ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_BUTTON_LABEL", "OIDC_ALLOWED_DOMAINS",
            "OIDC_AUTO_CREATE", "OIDC_AUTO_CREATE_ROLES", "OIDC_REQUIRE_FOR_STAFF")
    app.config.update(OIDC_ISSUER=provider.issuer, OIDC_CLIENT_ID=provider.client_id,
                      OIDC_CLIENT_SECRET=provider.client_secret, OIDC_BUTTON_LABEL=None, OIDC_ALLOWED_DOMAINS=None,
                      OIDC_AUTO_CREATE=False, OIDC_AUTO_CREATE_ROLES=None)
    provider.control(mode="", reset_seen=True)
    assert app.config["BASE_URL"] + "/login/sso/callback" == CALLBACK
    yield provider
    for key in keys:
        app.config.pop(key, None)
    app.config.update(saved)


def _as_idp_user(provider, sub="idp-1", email="agent@helpdesk.example.jp", verified=True, name="受付 テスト"):
    provider.control(user={"sub": sub, "email": email, "email_verified": verified, "name": name})


def _to_provider(client, provider, next_url=None):
    """Start the trip; return the provider's answer to /authorize (a redirect back to the app)."""
    start = client.get("/login/sso" + (f"?{urlencode({'next': next_url})}" if next_url else ""))
    assert start.status_code == 302
    location = start.headers["Location"]
    assert location.startswith(provider.issuer + "/authorize?")
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["nonce"][0] and query["state"][0] and query["scope"][0].split()[0] == "openid"
    assert query["redirect_uri"] == [CALLBACK] and query["client_id"] == [provider.client_id]
    answer = requests.get(location, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def _back(client, url):
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CALLBACK
    return client.get(f"{parts.path}?{parts.query}")


def _round_trip(client, provider, next_url=None):
    return _back(client, _to_provider(client, provider, next_url))


def _audits(db, action, reason=None):
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()
    return [r for r in rows if reason is None or (r.detail or {}).get("reason") == reason]


def _signed_in(client) -> bool:
    return client.get("/agent/queue").status_code == 200


def _refused_page(client, response) -> str:
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    return client.get("/login").get_data(as_text=True)


# --- the login page ----------------------------------------------------------------------------

def test_button_only_when_configured(app, client, provider):
    page = client.get("/login").get_data(as_text=True)
    assert "シングルサインオンでログイン" not in page and 'id="sso-login"' not in page
    assert client.get("/login/sso").status_code == 404
    assert client.get("/login/sso/callback?code=x&state=y").status_code == 404
    app.config.update(OIDC_ISSUER=provider.issuer, OIDC_CLIENT_ID=provider.client_id,
                      OIDC_CLIENT_SECRET=provider.client_secret)
    try:
        page = client.get("/login").get_data(as_text=True)
        assert 'id="sso-login"' in page and "シングルサインオンでログイン" in page
        assert 'href="/login/sso"' in page
        page = client.get("/login?next=/agent/queue").get_data(as_text=True)
        assert 'href="/login/sso?next=/agent/queue"' in page
        app.config["OIDC_BUTTON_LABEL"] = "厚労省アカウントでログイン"
        page = client.get("/login").get_data(as_text=True)
        assert "厚労省アカウントでログイン" in page and "シングルサインオンでログイン" not in page
    finally:
        for key in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_BUTTON_LABEL"):
            app.config.pop(key, None)


# --- the round trip ----------------------------------------------------------------------------

def test_round_trip_links_by_verified_email_then_by_sub(db, client, sso, make_user):
    agent = make_user(roles="agent", email="agent@helpdesk.example.jp", state="invited", must_change_password=True)
    _as_idp_user(sso, sub="idp-agent-1", email="Agent@helpdesk.example.jp")
    done = _round_trip(client, sso)
    assert done.status_code == 302 and urlsplit(done.headers["Location"]).path in ("/", "/agent/queue")
    # Signed in as the agent; the initial password is not forced on someone who does not use it.
    assert _signed_in(client)
    assert sso.seen()[-1] == {"code_known": True, "pkce": True}

    identity = db.session.scalar(select(UserIdentity).where(UserIdentity.user_id == agent.id))
    assert (identity.issuer, identity.subject, identity.email) == (sso.issuer, "idp-agent-1",
                                                                   "agent@helpdesk.example.jp")
    db.session.refresh(agent)
    assert agent.state == "activated" and agent.last_login_at is not None
    linked = _audits(db, "user.identity_linked")
    assert len(linked) == 1 and linked[0].object_id == str(agent.id)
    assert linked[0].detail["via"] == "email" and linked[0].detail["subject"] == "idp-agent-1"
    ok = _audits(db, "login.sso_succeeded")
    assert len(ok) == 1 and ok[0].actor_id == agent.id and ok[0].detail["newly_linked"] is True

    client.post("/logout")
    assert not _signed_in(client)
    # The provider now sends another address (a renamed mailbox): the person is found by `sub`.
    _as_idp_user(sso, sub="idp-agent-1", email="renamed@helpdesk.example.jp", verified=False)
    again = _round_trip(client, sso)
    assert again.status_code == 302 and _signed_in(client)
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 1
    ok = _audits(db, "login.sso_succeeded")
    assert len(ok) == 2 and ok[1].detail["newly_linked"] is False and ok[1].actor_id == agent.id


def test_next_address_is_kept_across_the_trip(db, client, sso, make_user, make_ticket):
    make_user(roles="agent supervisor", email="agent@helpdesk.example.jp")
    _as_idp_user(sso)
    done = _round_trip(client, sso, next_url="/agent/queue?status=open")
    assert done.status_code == 302 and done.headers["Location"].endswith("/agent/queue?status=open")
    client.post("/logout")
    # An address on another site is never followed.
    done = _round_trip(client, sso, next_url="https://evil.example/x")
    assert urlsplit(done.headers["Location"]).netloc in ("", "localhost")
    assert "evil" not in done.headers["Location"]


# --- refused by the protocol -------------------------------------------------------------------

def test_wrong_state_refused(db, client, sso, make_user):
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso)
    back = _to_provider(client, sso)
    parts = urlsplit(back)
    query = parse_qs(parts.query)
    forged = urlunsplit(parts._replace(query=urlencode({"code": query["code"][0], "state": "forged-state"})))
    page = _refused_page(client, _back(client, forged))
    assert "シングルサインオンでログインできませんでした" in page
    assert not _signed_in(client)
    assert len(_audits(db, "login.sso_refused", "state")) == 1
    # The provider was never asked for a token: the code would still work with the right state.
    assert sso.seen() == []
    # A callback with no trip started in this browser (someone else's link) is refused too.
    other = client.__class__(client.application)
    assert _refused_page(other, _back(other, back)) and not _signed_in(other)
    assert len(_audits(db, "login.sso_refused", "state")) == 2


@pytest.mark.parametrize("mode", ["wrong_nonce", "wrong_aud", "wrong_iss", "expired", "bad_signature",
                                  "no_id_token"])
def test_untrustworthy_id_token_refused(db, client, sso, make_user, mode):
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso)
    sso.control(mode=mode)
    page = _refused_page(client, _round_trip(client, sso))
    assert "シングルサインオンでログインできませんでした" in page
    assert not _signed_in(client)
    assert sso.seen()[-1]["pkce"] is True  # the token endpoint answered; its id_token was not believed
    refused = _audits(db, "login.sso_refused", "id_token")
    assert len(refused) == 1 and refused[0].detail["error"]
    assert _audits(db, "login.sso_succeeded") == [] and _audits(db, "user.identity_linked") == []


def test_provider_cancel_is_refused_and_audited(db, client, sso):
    sso.control(mode="deny")
    page = _refused_page(client, _round_trip(client, sso))
    assert "IDプロバイダーでのログインが完了しませんでした" in page
    refused = _audits(db, "login.sso_refused", "provider_error")
    assert len(refused) == 1 and refused[0].detail["error"] == "access_denied"


def test_unreachable_or_mismatched_provider(app, db, client, sso):
    app.config["OIDC_ISSUER"] = "http://127.0.0.1:9"  # nothing listens there
    start = client.get("/login/sso")
    assert urlsplit(start.headers["Location"]).path == "/login"
    assert "IDプロバイダーに接続できませんでした" in client.get("/login").get_data(as_text=True)
    # A discovery document naming another issuer is not used (the issuer here differs by a slash).
    app.config["OIDC_ISSUER"] = sso.issuer + "/"
    start = client.get("/login/sso")
    assert urlsplit(start.headers["Location"]).path == "/login"


# --- refused for who they are ------------------------------------------------------------------

def test_unknown_user_refused_when_auto_create_is_off(db, client, sso):
    _as_idp_user(sso, sub="idp-new", email="newcomer@helpdesk.example.jp")
    page = _refused_page(client, _round_trip(client, sso))
    assert "このアカウントはヘルプデスクに登録されていません" in page
    assert db.session.scalar(select(User).where(User.email == "newcomer@helpdesk.example.jp")) is None
    refused = _audits(db, "login.sso_refused", "unknown")
    assert len(refused) == 1 and refused[0].detail["email"] == "newcomer@helpdesk.example.jp"
    assert refused[0].actor_id is None


def test_auto_create_makes_an_agent(app, db, client, sso):
    app.config.update(OIDC_AUTO_CREATE="true", OIDC_AUTO_CREATE_ROLES="specialist")
    _as_idp_user(sso, sub="idp-new", email="newcomer@helpdesk.example.jp", name="新人 花子")
    done = _round_trip(client, sso)
    assert done.status_code == 302 and _signed_in(client)
    user = db.session.scalar(select(User).where(User.email == "newcomer@helpdesk.example.jp"))
    assert user.roles == "specialist" and user.name == "新人 花子" and user.password_hash is None
    assert user.state == "activated" and user.organisation_id is None and not user.must_change_password
    created = _audits(db, "user.created")
    assert created[-1].object_id == str(user.id) and created[-1].detail["via"] == "sso"
    assert _audits(db, "user.identity_linked")[-1].detail["via"] == "created"
    client.post("/logout")
    # Without a verified address nobody is created.
    _as_idp_user(sso, sub="idp-other", email="unverified@helpdesk.example.jp", verified=False)
    page = _refused_page(client, _round_trip(client, sso))
    assert "メールアドレスが確認されていない" in page
    assert db.session.scalar(select(User).where(User.email == "unverified@helpdesk.example.jp")) is None


def test_domain_not_allowed_refused(app, db, client, sso, make_user):
    app.config["OIDC_ALLOWED_DOMAINS"] = "helpdesk.example.jp, bpo.example.jp"
    make_user(roles="agent", email="agent@outsider.example")
    _as_idp_user(sso, sub="idp-out", email="agent@outsider.example")
    page = _refused_page(client, _round_trip(client, sso))
    assert "このメールアドレスのドメインでは" in page and not _signed_in(client)
    assert len(_audits(db, "login.sso_refused", "domain")) == 1
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 0
    # An allowed domain signs in.
    make_user(roles="agent", email="desk@bpo.example.jp")
    _as_idp_user(sso, sub="idp-in", email="desk@bpo.example.jp")
    assert _round_trip(client, sso).status_code == 302 and _signed_in(client)


def test_deactivated_user_refused(db, client, sso, make_user):
    agent = make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso, sub="idp-agent-1")
    assert _round_trip(client, sso).status_code == 302 and _signed_in(client)
    client.post("/logout")
    agent.state = "disabled"
    db.session.commit()
    page = _refused_page(client, _round_trip(client, sso))
    assert "このアカウントは無効になっています" in page and not _signed_in(client)
    refused = _audits(db, "login.sso_refused", "disabled")
    assert len(refused) == 1 and refused[0].actor_id == agent.id


def test_requester_refused(db, client, sso, make_user, make_org):
    requester = make_user(roles="requester", org=make_org(), email="clinic@example.jp")
    _as_idp_user(sso, sub="idp-clinic", email="clinic@example.jp")
    page = _refused_page(client, _round_trip(client, sso))
    assert "シングルサインオンは職員用です" in page
    assert client.get("/portal").status_code == 302  # not signed in
    refused = _audits(db, "login.sso_refused", "not_staff")
    assert len(refused) == 1 and refused[0].object_id == str(requester.id)
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 0  # never linked


def test_unverified_email_is_not_linked(db, client, sso, make_user):
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso, sub="idp-agent-1", verified=False)
    page = _refused_page(client, _round_trip(client, sso))
    assert "メールアドレスが確認されていない" in page
    assert len(_audits(db, "login.sso_refused", "email_unverified")) == 1
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 0


def test_second_subject_for_a_linked_user_refused(db, client, sso, make_user):
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso, sub="idp-agent-1")
    assert _round_trip(client, sso).status_code == 302
    client.post("/logout")
    # The provider re-created the person (new sub, same address): an administrator must decide.
    _as_idp_user(sso, sub="idp-agent-2")
    page = _refused_page(client, _round_trip(client, sso))
    assert "別の利用者と既に紐付いています" in page
    assert len(_audits(db, "login.sso_refused", "identity_conflict")) == 1


# --- sessions and the second factor ------------------------------------------------------------

def test_two_factor_policy_is_left_to_the_provider(db, client, sso, make_user):
    from helpdesk.accounts import twofactor
    from helpdesk.audit import Actor

    twofactor.set_required_roles(db.session, ["agent"], Actor.system("test"))
    db.session.commit()
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso)
    sso.control(user={"sub": "idp-1", "email": "agent@helpdesk.example.jp", "email_verified": True,
                      "amr": ["pwd", "otp"]})
    assert _round_trip(client, sso).status_code == 302
    # Not sent to the TOTP enrolment gate: the provider handled the second factor.
    assert client.get("/agent/queue").status_code == 200
    assert _audits(db, "login.sso_succeeded")[-1].detail["amr"] == ["pwd", "otp"]


def test_signed_in_user_is_sent_home_and_logout_ends_the_session(db, client, sso, make_user):
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso)
    assert _round_trip(client, sso).status_code == 302
    again = client.get("/login/sso")
    assert again.status_code == 302 and not again.headers["Location"].startswith(sso.issuer)
    client.post("/logout")
    assert not _signed_in(client)


# --- settings and words ------------------------------------------------------------------------

def test_settings_are_checked():
    assert oidc.settings({}) is None
    with pytest.raises(oidc.ConfigError, match="OIDC_CLIENT_SECRET"):
        oidc.settings({"OIDC_ISSUER": "https://idp.example.jp", "OIDC_CLIENT_ID": "x"})
    with pytest.raises(oidc.ConfigError, match="https"):
        oidc.settings({"OIDC_ISSUER": "http://idp.example.jp", "OIDC_CLIENT_ID": "x", "OIDC_CLIENT_SECRET": "y"})
    with pytest.raises(oidc.ConfigError, match="OIDC_AUTO_CREATE_ROLES"):
        oidc.settings({"OIDC_ISSUER": "https://idp.example.jp", "OIDC_CLIENT_ID": "x", "OIDC_CLIENT_SECRET": "y",
                       "OIDC_AUTO_CREATE_ROLES": "agent admin"})
    cfg = oidc.settings({"OIDC_ISSUER": "https://idp.example.jp", "OIDC_CLIENT_ID": "x", "OIDC_CLIENT_SECRET": "y",
                         "OIDC_ALLOWED_DOMAINS": "@Example.JP, bpo.example.jp", "OIDC_AUTO_CREATE": "on",
                         "OIDC_AUTO_CREATE_ROLES": "specialist,agent", "OIDC_SCOPES": "email profile",
                         "OIDC_REQUIRE_FOR_STAFF": "yes"})
    assert cfg.allowed_domains == ("example.jp", "bpo.example.jp") and cfg.auto_create
    assert cfg.auto_create_roles == "agent specialist" and cfg.scopes == "openid email profile"
    assert cfg.require_for_staff and not oidc.settings({"OIDC_ISSUER": "https://i.example.jp", "OIDC_CLIENT_ID": "x",
                                                        "OIDC_CLIENT_SECRET": "y"}).require_for_staff
    assert cfg.metadata_url == "https://idp.example.jp/.well-known/openid-configuration"


def test_audit_words_for_single_sign_on(app):
    with app.test_request_context(headers={"Accept-Language": "ja"}):
        assert audit_words.action_label("login.sso_succeeded") == "シングルサインオンでログイン"
        assert audit_words.action_label("login.sso_refused") == "シングルサインオンを拒否"
        assert audit_words.action_label("user.identity_linked") == "IDプロバイダーのアカウントを紐付け"
        assert audit_words.detail_lines("login.sso_refused", {"reason": "not_staff"}) == ["理由: 職員ではない"]
        assert audit_words.detail_lines("login.sso_refused", {"reason": "domain"}) == ["理由: 許可されていないドメイン"]


def test_in_english(db, client, sso, make_user, make_org):
    client.post("/lang", data={"lang": "en"})
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with single sign-on" in page and "シングルサインオン" not in page
    make_user(roles="requester", org=make_org(), email="clinic@example.jp")
    _as_idp_user(sso, sub="idp-clinic", email="clinic@example.jp")
    page = _refused_page(client, _round_trip(client, sso))
    assert "Single sign-on is for staff." in page
    # The language chosen before the trip is kept in the new session.
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso)
    assert _round_trip(client, sso).status_code == 302
    assert 'lang="en"' in client.get("/agent/queue").get_data(as_text=True)
    with client.application.test_request_context(headers={"Accept-Language": "en"}):
        from flask import session

        session["lang"] = "en"
        assert audit_words.action_label("login.sso_refused") == "Single sign-on refused"
        assert audit_words.detail_lines("login.sso_refused", {"reason": "state"}) == \
            ["Reason: answer does not match the request"]


def test_admin_sees_and_removes_a_link(db, app, sso, make_user, login):
    agent = make_user(roles="agent", email="agent@helpdesk.example.jp")
    supervisor = make_user(roles="supervisor", email="sv@helpdesk.example.jp")
    admin = make_user(roles="admin", email="admin@helpdesk.example.jp")
    browser = app.test_client()
    _as_idp_user(sso, sub="idp-agent-1")
    assert _round_trip(browser, sso).status_code == 302
    identity = db.session.scalar(select(UserIdentity).where(UserIdentity.user_id == agent.id))

    desk = app.test_client()
    desk.post("/login", data={"email": supervisor.email, "password": "Test-Passw0rd!"})
    page = desk.get(f"/accounts/users/{agent.id}").get_data(as_text=True)
    assert 'id="sso-identities"' in page and "<code>idp-agent-1</code>" in page and sso.issuer in page
    assert "紐付けを解除" not in page  # supervisors see the link; only administrators remove it
    assert desk.post(f"/accounts/users/{agent.id}/identities/{identity.id}/unlink").status_code == 403
    desk.post("/logout")

    desk.post("/login", data={"email": admin.email, "password": "Test-Passw0rd!"})
    assert "紐付けを解除" in desk.get(f"/accounts/users/{agent.id}").get_data(as_text=True)
    # Another user's id in the path does not reach this link.
    assert desk.post(f"/accounts/users/{admin.id}/identities/{identity.id}/unlink").status_code == 404
    done = desk.post(f"/accounts/users/{agent.id}/identities/{identity.id}/unlink")
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/accounts/users/{agent.id}")
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 0
    unlinked = _audits(db, "user.identity_unlinked")
    assert len(unlinked) == 1 and unlinked[0].actor_id == admin.id and unlinked[0].detail["subject"] == "idp-agent-1"
    page = desk.get(f"/accounts/users/{agent.id}").get_data(as_text=True)
    assert "まだ紐付いていません" in page

    # The provider's re-created person (new sub) can now sign in and is linked again by the verified address.
    browser.post("/logout")
    _as_idp_user(sso, sub="idp-agent-2")
    assert _round_trip(browser, sso).status_code == 302 and _signed_in(browser)
    again = db.session.scalar(select(UserIdentity).where(UserIdentity.user_id == agent.id))
    assert again.subject == "idp-agent-2"


def test_staff_must_use_single_sign_on_when_required(app, db, client, sso, make_user, make_org):
    agent = make_user(roles="agent", email="agent@helpdesk.example.jp")
    admin = make_user(roles="admin", email="admin@helpdesk.example.jp")
    requester = make_user(roles="requester", org=make_org(), email="clinic@example.jp")
    owner = make_user(roles="product_owner", email="po@helpdesk.example.jp")
    assert "パスワードではログインできません" not in client.get("/login").get_data(as_text=True)
    app.config["OIDC_REQUIRE_FOR_STAFF"] = "true"
    assert "職員のアカウントは、パスワードではログインできません" in client.get("/login").get_data(as_text=True)

    # The right password of an agent is refused like a wrong one, without using up an attempt.
    for who in (agent, owner):
        refused = client.post("/login", data={"email": who.email, "password": "Test-Passw0rd!"})
        assert refused.status_code == 401 and "ログインIDまたはパスワードが正しくないか" in refused.get_data(as_text=True)
    assert not _signed_in(client)
    db.session.refresh(agent)
    assert agent.failed_logins == 0 and agent.last_login_at is None
    refused = _audits(db, "login.refused", "sso_required")
    assert [r.actor_id for r in refused] == [agent.id, owner.id]
    assert _audits(db, "login.succeeded") == []

    # Requesters keep their password; administrators keep theirs (the way in when the provider is down).
    for who in (requester, admin):
        assert client.post("/login", data={"email": who.email, "password": "Test-Passw0rd!"}).status_code == 302
        client.post("/logout")
    # The agent signs in through the provider.
    _as_idp_user(sso, sub="idp-agent-1")
    assert _round_trip(client, sso).status_code == 302 and _signed_in(client)
    with app.test_request_context():
        assert audit_words.detail_lines("login.refused", {"reason": "sso_required"}) == ["理由: 職員はシングルサインオンのみ"]


def test_a_rolled_signing_key_is_fetched(db, client, sso, make_user):
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso)
    assert _round_trip(client, sso).status_code == 302 and _signed_in(client)  # the JWKS is now cached
    client.post("/logout")
    kids = sso.control(rotate_key=True)["kids"]
    assert len(kids) >= 2
    # The id_token is signed with a key the app has not seen: its kid makes the app read the JWKS again.
    assert _round_trip(client, sso).status_code == 302 and _signed_in(client)
    assert len(_audits(db, "login.sso_succeeded")) == 2


def test_admin_overview_page(app, db, client, sso, make_user, login):
    admin = make_user(roles="admin", email="admin@helpdesk.example.jp")
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    make_user(roles="agent", email="other@helpdesk.example.jp")
    login(make_user(roles="supervisor", email="sv@helpdesk.example.jp"))
    assert client.get("/admin/security/sso").status_code == 403
    client.post("/logout")
    _as_idp_user(sso, sub="idp-agent-1")
    assert _round_trip(client, sso).status_code == 302
    client.post("/logout")
    login(admin)
    app.config.update(OIDC_AUTO_CREATE="on", OIDC_AUTO_CREATE_ROLES="agent specialist", OIDC_REQUIRE_FOR_STAFF="on",
                      OIDC_ALLOWED_DOMAINS="helpdesk.example.jp")
    page = client.get("/admin/security/sso").get_data(as_text=True)
    assert "接続できました" in page and "RS256" in page
    assert '<code id="sso-redirect-uri">http://127.0.0.1:5000/login/sso/callback</code>' in page
    assert "作成する（権限: オペレーター、" in page and "できない（管理者を除く）" in page
    assert "しない（IDプロバイダーのログイン状態を使う）" in page
    assert "helpdesk.example.jp" in page
    # 4 staff accounts (admin, 2 agents, supervisor), 1 linked.
    assert "職員 4 人のうち 1 人が" in page
    assert 'href="/admin/security/sso"' in client.get("/admin").get_data(as_text=True)
    from flask_babel import refresh

    client.post("/lang", data={"lang": "en"})
    refresh()  # the test holds one app context: forget the locale flask-babel cached in it
    page = client.get("/admin/security/sso").get_data(as_text=True)
    assert "Redirect URI to register at the identity provider" in page and "1 of 4 staff accounts are linked" in page
    client.post("/lang", data={"lang": "ja"})
    refresh()
    app.config["OIDC_ISSUER"] = "http://127.0.0.1:9"
    page = client.get("/admin/security/sso").get_data(as_text=True)
    assert "接続できません" in page
    for key in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        app.config[key] = None
    page = client.get("/admin/security/sso").get_data(as_text=True)
    assert 'id="sso-off"' in page


def test_reauthentication_for_shared_workstations(app, db, client, sso, make_user):
    make_user(roles="agent", email="agent@helpdesk.example.jp")
    _as_idp_user(sso)
    # Off (default): the provider's session of an hour ago is reused without asking the person again.
    sso.control(provider_session_age=3600)
    assert _round_trip(client, sso).status_code == 302 and _signed_in(client)
    client.post("/logout")
    assert sso.control()["prompts"] == [None]

    app.config["OIDC_REAUTHENTICATE"] = "true"
    sso.control(provider_session_age=3600, reset_seen=True)
    assert _round_trip(client, sso).status_code == 302 and _signed_in(client)  # asked again: auth_time is now
    assert sso.control()["prompts"] == ["login"]
    client.post("/logout")
    # A provider that ignores prompt=login hands back the old session: refused.
    sso.control(mode="stale_session", provider_session_age=3600)
    page = _refused_page(client, _round_trip(client, sso))
    assert "シングルサインオンでログインできませんでした" in page and not _signed_in(client)
    refused = _audits(db, "login.sso_refused", "reauth")
    assert len(refused) == 1 and "auth_time" in refused[0].detail["error"]
    with app.test_request_context():
        assert audit_words.detail_lines("login.sso_refused", {"reason": "reauth"}) == \
            ["理由: IDプロバイダーで認証し直されていない"]
