"""The api domain."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")

from helpdesk.api import views  # noqa: E402,F401  (routes register on bp)
