"""The reports domain: the monthly BPO client report."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("reports", __name__, template_folder="templates", static_folder="static",
               static_url_path="/reports/static")


def init_app(app) -> None:
    """Register the reports pages (the views module adds its routes to `bp` when imported)."""
    from helpdesk.reports import views  # noqa: F401  (they import `bp` from here)

    app.register_blueprint(bp)
    from helpdesk.reports.cli import COMMANDS

    for command in COMMANDS:  # `helpdesk reports …` and friends
        app.cli.add_command(command)
