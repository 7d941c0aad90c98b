"""The api domain: JSON API v1 (token auth), OpenAPI document, API tokens and webhook admin pages."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")

DEFAULT_RATE_LIMIT = "600 per minute"


def _setup() -> None:
    from helpdesk.api import ratelimit
    from helpdesk.api.admin import admin_bp
    from helpdesk.extensions import csrf

    # Token-authenticated: no cookies are read, so CSRF does not apply (the admin pages keep it).
    csrf.exempt(bp)
    # Per-token limit, one Redis round trip (see ratelimit.py for why not Flask-Limiter here).
    bp.before_request(ratelimit.check)
    bp.after_request(ratelimit.add_headers)
    # The admin pages live outside /api/v1; they register with the API blueprint.
    bp.record_once(lambda state: state.app.register_blueprint(admin_bp))


from helpdesk.api import docs, views  # noqa: E402,F401  (routes register on bp)
from helpdesk._optional import import_optional  # noqa: E402

# Problems and insights operations exist when the insights domain does.
import_optional("helpdesk.api.insights_views")

_setup()
