"""The insights domain."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("insights", __name__, template_folder="templates")


def init_app(app) -> None:
    """Register the insights pages (the views module adds its routes to `bp` when imported)."""
    from helpdesk.insights import views  # noqa: F401  (they import `bp` from here)

    app.register_blueprint(bp)
    from helpdesk.insights.cli import COMMANDS

    for command in COMMANDS:  # `helpdesk insights …` and friends
        app.cli.add_command(command)
