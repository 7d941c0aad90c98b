"""The api domain: JSON API v1 (token auth), OpenAPI document, API tokens and webhook admin pages."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")

DEFAULT_RATE_LIMIT = "600 per minute"


_set_up = False


def init_app(app) -> None:
    """Register the JSON API (routes, per-token rate limit, no CSRF) and the token/webhook admin pages;
    problem changes become webhook events."""
    global _set_up
    from helpdesk.api import docs, events, insights_views, ratelimit, views  # noqa: F401  (they import `bp`)
    from helpdesk.api.admin import admin_bp
    from helpdesk.extensions import csrf

    if not _set_up:  # the blueprint is shared by every app built in this process
        # Per-token limit, one Redis round trip (see ratelimit.py for why not Flask-Limiter here).
        bp.before_request(ratelimit.check)
        bp.after_request(ratelimit.add_headers)
        _set_up = True
    # Token-authenticated: no cookies are read, so CSRF does not apply (the admin pages keep it).
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.register_blueprint(admin_bp)
    events.connect_problem_events()
    from helpdesk.api.cli import COMMANDS

    for command in COMMANDS:  # `helpdesk api …` and friends
        app.cli.add_command(command)
