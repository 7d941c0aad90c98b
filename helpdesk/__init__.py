"""helpdesk: a BPO service-desk for a national vaccine-distribution rollout."""
from __future__ import annotations

import logging
import os

from flask import Flask, has_request_context, session
from werkzeug.middleware.proxy_fix import ProxyFix

from helpdesk import accounts, api, automation, core, insights, manuals, notify, ops, reports, sla, tickets
from helpdesk import config as config_module

#: The domains, in the order their blueprints register.
DOMAINS = (core, accounts, tickets, manuals, insights, sla, notify, reports, api, automation, ops)

logger = logging.getLogger(__name__)


def create_app(config: dict | None = None) -> Flask:
    """Build the application: defaults, then environment, then the explicit `config` override."""
    instance = os.environ.get("HELPDESK_INSTANCE") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "instance")
    app = Flask(__name__, instance_path=instance, instance_relative_config=True)
    from helpdesk.routing import init_url_map

    init_url_map(app)  # bounded integer ids in every route (before any rule is added)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config_module.load(app.instance_path))
    app.config.from_prefixed_env("HELPDESK")
    if config:
        app.config.update(config)
        if "REDIS_URL" in config and "RQ_ASYNC" not in config:
            app.config["RQ_ASYNC"] = bool(config["REDIS_URL"])
        if config.get("REDIS_URL") and "RATELIMIT_STORAGE_URI" not in config:
            app.config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"]
    _validate(app)
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    _init_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    _register_template_helpers(app)
    return app


def _validate(app: Flask) -> None:
    exempt = (app.testing or app.debug or app.config.get("HELPDESK_DEMO")
              or os.environ.get("HELPDESK_CLI") == "1")
    if app.config["SECRET_KEY"] == config_module.DEFAULT_SECRET_KEY and not exempt:
        raise RuntimeError("SECRET_KEY is not set: export SECRET_KEY (or run `helpdesk demo` for the demo).")
    from helpdesk.routing import configure_base_url
    from helpdesk.tickets.creation_limit import check_config

    check_config(app.config)  # ticket creation limits (also from HELPDESK_-prefixed variables)
    local = bool(app.testing or app.debug or app.config.get("HELPDESK_DEMO"))
    configure_base_url(app, may_default=exempt, local=local)


def _init_extensions(app: Flask) -> None:
    from helpdesk import security
    from helpdesk.extensions import babel, csrf, db, limiter, login_manager, migrate

    engine_options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        engine_options.setdefault("connect_args", {"timeout": 30})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options
    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _sqlite_pragmas(app)
    elif app.config.get("DB_PING_IDLE_SECONDS") is not None and not engine_options.get("pool_pre_ping"):
        with app.app_context():
            ping_idle_connections(db.engine, float(app.config["DB_PING_IDLE_SECONDS"]))
    migrate.init_app(app, db, directory=config_module.shipped_dir("migrations"),
                     render_as_batch=True, compare_type=True)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=lambda: "Asia/Tokyo")
    limiter.init_app(app)
    security.init_app(app)
    from helpdesk import access_audit

    access_audit.init_app(app)  # refused access, views of personal data and exports go to the audit log

    # Import every model module so metadata (create_all, Alembic) sees all tables.
    from helpdesk import models  # noqa: F401


def ping_idle_connections(engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only if it sat unused for `idle_seconds` or more.

    SQLAlchemy's `pool_pre_ping` costs a round trip on every checkout (~0.2 ms, 4 % of an API
    create). A connection handed back a moment ago is almost always alive; one that sat idle may
    have been closed by a database restart or a firewall. A dead one is replaced before the request
    sees it; if the database restarts while connections are busy, the request that hits a dropped
    connection gets the 503 page and the whole pool is renewed (SQLAlchemy invalidates it).
    """
    import time

    from sqlalchemy import event, exc

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):
        if record is not None:
            record.info["hd_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, _proxy):
        since = record.info.get("hd_idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as error:
            if engine.dialect.is_disconnect(error, dbapi_conn, None):
                raise exc.DisconnectionError(str(error)) from error  # the pool replaces it and retries
            raise


def _sqlite_pragmas(app: Flask) -> None:
    from sqlalchemy import event

    from helpdesk.extensions import db

    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in str(engine.url) and str(engine.url) != "sqlite://":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()


def _select_locale() -> str:
    from flask_login import current_user

    if not has_request_context():
        # CLI commands and jobs: a lazy service message (str(exc)) renders in Japanese, the
        # default; mail to an English user is rendered inside force_locale() instead.
        return "ja"
    choice = session.get("lang")
    if choice in ("ja", "en"):
        return choice
    try:
        if current_user.is_authenticated and current_user.locale in ("ja", "en"):
            return current_user.locale
    except Exception:
        pass
    return "ja"


def _register_blueprints(app: Flask) -> None:
    # Each domain registers its own blueprints (and, for the API, its problem-event hooks).
    for domain in DOMAINS:
        domain.init_app(app)


def _register_cli(app: Flask) -> None:
    from helpdesk.cli import register

    register(app)


def _register_template_helpers(app: Flask) -> None:
    from helpdesk import templating

    templating.init_app(app)
