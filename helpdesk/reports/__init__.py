"""The reports domain: the monthly BPO client report."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("reports", __name__, template_folder="templates", static_folder="static",
               static_url_path="/reports/static")

from helpdesk.reports import views  # noqa: E402,F401  (routes register on bp)
