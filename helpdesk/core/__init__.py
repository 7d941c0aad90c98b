"""Cross-cutting pages: home, health check, language switch."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("core", __name__, template_folder="templates")

from helpdesk.core import views  # noqa: E402,F401
