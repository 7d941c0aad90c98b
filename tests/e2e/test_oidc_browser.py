"""Browser: an agent clicks 「シングルサインオンでログイン」 on the login page, goes through the identity
provider (tests/accounts/oidc_provider.py in its own process, approving at once) and lands in the agent
queue; a requester who tries the same is sent back with the plain message. Login page checked with axe-core.

The app is served on a port of this helper's range (5820-5829), the provider on another one; BASE_URL and
the OIDC_* settings of the shared live app are put back afterwards.
"""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.accounts.oidc_provider import running_provider
from tests.e2e.conftest import run_axe

SCREENS = Path(__file__).resolve().parents[2] / "bench" / "out" / "screens"
PORTS = range(5820, 5830)


def _port_in_range() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free port in 5820-5829")


@pytest.fixture(scope="module")
def sso_site(live_app):
    server = make_server("127.0.0.1", _port_in_range(), live_app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    saved = {k: live_app.config.get(k) for k in ("BASE_URL", "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")}
    try:
        with running_provider([f"{base}/login/sso/callback"], ports=PORTS) as provider:
            live_app.config.update(BASE_URL=base, OIDC_ISSUER=provider.issuer, OIDC_CLIENT_ID=provider.client_id,
                                   OIDC_CLIENT_SECRET=provider.client_secret)
            yield base, provider
    finally:
        live_app.config.update(saved)
        for key, value in saved.items():
            if value is None:
                live_app.config.pop(key, None)
        server.shutdown()


@pytest.fixture
def sso_page(browser):
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_agent_signs_in_through_the_provider(sso_site, sso_page, live_app):
    base, provider = sso_site
    page = sso_page
    provider.control(mode="", user={"sub": "idp-agent1", "email": "agent1@helpdesk.example.jp",
                                    "email_verified": True, "name": "受付 一郎"})
    page.goto(f"{base}/login")
    button = page.locator("#sso-login")
    assert button.inner_text().strip() == "シングルサインオンでログイン"
    assert run_axe(page) == []
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "17_6_sso_login_button.png"), full_page=True)
    requests_seen = []
    page.on("request", lambda r: requests_seen.append(r.url) if r.is_navigation_request() else None)

    button.click()
    page.wait_for_url(f"{base}/agent/queue**")
    page.wait_for_load_state("networkidle")
    # The browser really went to the provider and back (not a shortcut inside the app).
    assert any(url.startswith(f"{provider.issuer}/authorize?") for url in requests_seen)
    assert any(url.startswith(f"{base}/login/sso/callback?") for url in requests_seen)
    assert "受付 一郎" in page.locator("header").inner_text()
    page.screenshot(path=str(SCREENS / "17_6_sso_agent_queue.png"), full_page=False)

    from sqlalchemy import select

    from helpdesk.accounts.models import AuditLog
    from helpdesk.accounts.oidc import UserIdentity
    from helpdesk.extensions import db

    with live_app.app_context():
        identity = db.session.scalar(select(UserIdentity).where(UserIdentity.subject == "idp-agent1"))
        assert identity is not None and identity.issuer == provider.issuer
        assert db.session.scalar(select(AuditLog.action).where(AuditLog.actor_id == identity.user_id)
                                 .order_by(AuditLog.id.desc()).limit(1)) == "login.sso_succeeded"
    page.locator("form[action$='/logout'] button").first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.startswith(f"{base}/login")


def test_requester_is_sent_back_with_a_plain_message(sso_site, sso_page, live_app):
    from sqlalchemy import select

    from helpdesk.accounts.models import User
    from helpdesk.extensions import db

    base, provider = sso_site
    page = sso_page
    with live_app.app_context():
        email = db.session.scalar(select(User.email).where(User.roles == "requester", User.state != "disabled")
                                  .order_by(User.id).limit(1))
    assert email
    provider.control(mode="", user={"sub": "idp-requester", "email": email, "email_verified": True})
    page.goto(f"{base}/login")
    page.click("#sso-login")
    page.wait_for_url(f"{base}/login**")
    page.wait_for_load_state("networkidle")
    message = page.locator(".flash--error").first.inner_text()
    assert "シングルサインオンは職員用です" in message
    assert page.locator("#email").is_visible()  # the password form is right there
    page.screenshot(path=str(SCREENS / "17_6_sso_requester_refused.png"), full_page=False)


def test_admin_sees_the_link_on_the_user_page(sso_site, browser, live_app):
    from sqlalchemy import select

    from helpdesk.accounts.models import User
    from helpdesk.demo import DEMO_PASSWORD
    from helpdesk.extensions import db

    base, provider = sso_site
    provider.control(mode="", user={"sub": "idp-agent1", "email": "agent1@helpdesk.example.jp",
                                    "email_verified": True})
    agent_context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    try:
        agent_page = agent_context.new_page()
        agent_page.goto(f"{base}/login")
        agent_page.click("#sso-login")  # links agent1 if the first test did not run
        agent_page.wait_for_url(f"{base}/agent/queue**")
    finally:
        agent_context.close()
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")  # the administrator's own browser
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        with live_app.app_context():
            agent_id = db.session.scalar(select(User.id).where(User.email == "agent1@helpdesk.example.jp"))
        page.goto(f"{base}/login")
        page.fill("#email", "admin@helpdesk.example.jp")
        page.fill("#password", DEMO_PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{base}/accounts/users/{agent_id}")
        section = page.locator("#sso-identities")
        assert provider.issuer in section.inner_text() and "idp-agent1" in section.inner_text()
        assert section.locator("button", has_text="紐付けを解除").count() == 1
        assert run_axe(page) == []
        section.screenshot(path=str(SCREENS / "17_6_sso_user_page_link.png"))
        # The administrator's overview: settings, the redirect URI to register, the provider reachable.
        page.goto(f"{base}/admin")
        page.click("text=シングルサインオン")
        page.wait_for_url(f"{base}/admin/security/sso")
        assert page.locator("#sso-redirect-uri").inner_text() == f"{base}/login/sso/callback"
        assert "接続できました" in page.locator("#sso-reachable").inner_text()
        assert run_axe(page) == []
        page.screenshot(path=str(SCREENS / "17_6_sso_admin_overview.png"), full_page=True)
    finally:
        context.close()
