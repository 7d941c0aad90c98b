"""Browser: the administrator requires two-factor sign-in for agents; an agent enrols (QR code drawn by the
server, key typed into a TOTP generator), keeps the recovery codes, signs out, and signs in again through the
real login form with a code, then with a recovery code. Pages checked with axe-core.

Served on a port of this session's range (5800-5899), not an ephemeral one.
"""
from __future__ import annotations

import re
import socket
import threading
import time

import pyotp
import pytest
from werkzeug.serving import make_server

from tests.e2e.conftest import PASSWORD, run_axe


def _port_in_range() -> int:
    for port in range(5800, 5900):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free port in 5800-5899")


@pytest.fixture(scope="module")
def tf_server(live_app):
    server = make_server("127.0.0.1", _port_in_range(), live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def tf_page(tf_server, browser, live_app):
    """A page of the suite's one browser (a second sync_playwright() in the same process is refused).

    The test requires two-factor sign-in for agents on the shared live app; the policy is put back
    afterwards so that later browser tests can still sign agents in with a password alone.
    """
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
    from helpdesk.accounts import twofactor
    from helpdesk.audit import Actor
    from helpdesk.extensions import db

    with live_app.app_context():
        twofactor.set_required_roles(db.session, [], Actor.system("test"))
        db.session.commit()


def _sign_in(page, base, email):
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")


def _sign_out(page):
    page.locator("form[action$='/logout'] button").first.click()
    page.wait_for_load_state("networkidle")


def test_required_enrolment_then_code_and_recovery_sign_in(tf_page, tf_server, live_app):
    from helpdesk.accounts import twofactor
    from helpdesk.accounts.models import User
    from helpdesk.accounts.passwords import hash_password
    from helpdesk.extensions import db

    with live_app.app_context():
        for email, roles in (("tf-admin@helpdesk.example.jp", "admin"), ("tf-agent@helpdesk.example.jp", "agent")):
            db.session.add(User(email=email, name=f"二段階 {roles}", roles=roles, password_hash=hash_password(PASSWORD),
                                must_change_password=False, state="activated"))
        db.session.commit()
    page, base = tf_page, tf_server

    # The administrator requires it for agents.
    _sign_in(page, base, "tf-admin@helpdesk.example.jp")
    page.goto(f"{base}/admin/security/2fa")
    page.check("input[name=roles][value=agent]")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("input[name=roles][value=agent]").is_checked()
    assert run_axe(page) == []
    _sign_out(page)

    # The agent is sent to the set-up page and cannot open the queue before enrolling.
    _sign_in(page, base, "tf-agent@helpdesk.example.jp")
    page.goto(f"{base}/agent/queue")
    assert page.url.endswith("/account/2fa")
    page.click("main button[type=submit]")  # 設定をはじめる
    page.wait_for_load_state("networkidle")
    assert page.locator("figure.qr svg").count() == 1
    assert run_axe(page) == []
    secret = page.inner_text("#totp-secret").strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main form button[type=submit]")
    page.wait_for_load_state("networkidle")
    codes = [c.strip() for c in page.locator("#recovery-codes code").all_inner_texts()]
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", c) for c in codes)
    page.goto(f"{base}/agent/queue")
    assert page.url.endswith("/agent/queue")
    _sign_out(page)

    # Sign in again: password, then the code step of the login form.
    _sign_in(page, base, "tf-agent@helpdesk.example.jp")
    assert page.url.endswith("/login/2fa")
    assert run_axe(page) == []
    page.fill("#code", "000000")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "確認コードが正しくありません" in page.inner_text("#code-error")
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))  # the enrolment used the current step
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/agent/queue")
    assert page.url.endswith("/agent/queue")
    _sign_out(page)

    # Without the phone: a recovery code, once.
    _sign_in(page, base, "tf-agent@helpdesk.example.jp")
    page.fill("#code", codes[3])
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url
    with live_app.app_context():
        user = db.session.query(User).filter_by(email="tf-agent@helpdesk.example.jp").one()
        assert twofactor.recovery_codes_left(db.session, user.id) == 9
