"""The automation domain: supervisors' rules that act on tickets when they change or as time passes."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("automation", __name__, template_folder="templates")


def init_app(app) -> None:
    """Register the rule pages and the `helpdesk automation` command."""
    from helpdesk.automation import models, views  # noqa: F401  (views add their routes to `bp`)
    from helpdesk.automation.cli import automation_cli

    app.register_blueprint(bp)
    app.cli.add_command(automation_cli)
