"""The tickets domain: agent queue and ticket page, phone intake, requester portal."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("tickets", __name__, template_folder="templates")


def init_app(app) -> None:
    """Register the agent queue and ticket page, phone intake, requester portal and attachment routes."""
    # They import `bp` from here and add their routes to it.
    from helpdesk.tickets import assignment_views, attachments, intake, portal, views  # noqa: F401

    app.register_blueprint(bp)
    from helpdesk.tickets.cli import COMMANDS

    for command in COMMANDS:  # `helpdesk tickets …` and friends
        app.cli.add_command(command)
