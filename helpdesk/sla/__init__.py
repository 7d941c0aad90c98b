"""The sla domain."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("sla", __name__, template_folder="templates")


def init_app(app) -> None:
    """Register the sla pages (the views module adds its routes to `bp` when imported)."""
    from helpdesk.sla import views  # noqa: F401  (they import `bp` from here)

    app.register_blueprint(bp)
    from helpdesk.sla.cli import COMMANDS

    for command in COMMANDS:  # `helpdesk sla …` and friends
        app.cli.add_command(command)
