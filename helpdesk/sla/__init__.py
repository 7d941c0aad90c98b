"""The sla domain."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("sla", __name__, template_folder="templates")

from helpdesk.sla import views  # noqa: E402,F401  (routes register on bp)
