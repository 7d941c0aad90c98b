"""The notify domain."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("notify", __name__, template_folder="templates")


def init_app(app) -> None:
    """Register the notify pages (the views module adds its routes to `bp` when imported)."""
    from helpdesk.notify import views  # noqa: F401  (they import `bp` from here)

    app.register_blueprint(bp)
    from helpdesk.notify.cli import COMMANDS

    for command in COMMANDS:  # `helpdesk notify …` and friends
        app.cli.add_command(command)
