"""Browser tests: the app served on loopback, driven by Debian's Chromium through Playwright.

Chromium is never downloaded by Playwright: we launch /usr/bin/chromium. Without it the tests
skip with a reason, except in CI (HELPDESK_REQUIRE_BROWSER=1), where they fail.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, base_config

CHROMIUM = os.environ.get("HELPDESK_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _need_browser():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if os.environ.get("HELPDESK_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required in CI but /usr/bin/chromium is missing")
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium fonts-ipafont-gothic)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get("HELPDESK_REQUIRE_BROWSER") == "1":
            pytest.fail("playwright (Python) is required in CI")
        pytest.skip("playwright is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    """A separate app on a file SQLite DB (commits must be visible to the server thread)."""
    _need_browser()
    from helpdesk import create_app
    from helpdesk.extensions import db
    from helpdesk.tickets.service import ensure_categories

    tmp = tmp_path_factory.mktemp("e2e")
    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp / 'e2e.db'}", WTF_CSRF_ENABLED=True,
                                 UPLOAD_FOLDER=str(tmp / "uploads"), REDIS_URL=None, JOBS_RAISE=False))
    app.config["RQ_ASYNC"] = False
    with app.app_context():
        db.create_all()
        ensure_categories(db.session)
        db.session.commit()
        from helpdesk.demo import load_demo

        load_demo(db.session)
    return app


@pytest.fixture(scope="session")
def live_server(live_app):
    port = _free_port()
    server = make_server("127.0.0.1", port, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                                     args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", bypass_csp=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def in_live_app(live_app):
    """Run a callable inside the live app's context (to create data the browser will see)."""

    def run(fn):
        with live_app.app_context():
            from helpdesk.extensions import db

            result = fn(db.session)
            db.session.commit()
            return result

    return run


@pytest.fixture
def browser_login(live_server):
    def do(page, email, password=None):
        page.goto(f"{live_server}/login")
        page.fill("#email", email)
        page.fill("#password", password or DEMO_PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_load_state("networkidle")

    return do


def run_axe(page) -> list[dict]:
    """Run axe-core (installed from npm, evaluated locally) and return violations of WCAG A/AA rules."""
    if not AXE.exists():
        if os.environ.get("HELPDESK_REQUIRE_BROWSER") == "1":
            pytest.fail("node_modules/axe-core is missing (npm install axe-core)")
        pytest.skip("axe-core not installed (npm install axe-core)")
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => await axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})""")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"]]


from helpdesk.demo import DEMO_PASSWORD  # noqa: E402

__all__ = ["run_axe", "PASSWORD", "DEMO_PASSWORD"]
