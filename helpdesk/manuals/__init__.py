"""The manuals domain."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("manuals", __name__, template_folder="templates")


def init_app(app) -> None:
    """Register the manuals pages (the views module adds its routes to `bp` when imported) and `helpdesk kb`."""
    from helpdesk.kb_cli import kb_cli  # also on the top-level group, so `helpdesk kb` starts without the app
    from helpdesk.manuals import views  # noqa: F401  (they import `bp` from here)

    app.register_blueprint(bp)
    app.cli.add_command(kb_cli)
