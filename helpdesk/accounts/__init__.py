"""Accounts: organisations, users, login, onboarding."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("accounts", __name__, template_folder="templates")


def init_app(app) -> None:
    """Register the accounts pages (the views module adds its routes to `bp` when imported)."""
    # The view modules add their routes to `bp` when imported.
    from helpdesk.accounts import admin_views, oidc, oidc_views, twofactor_views, views  # noqa: F401

    oidc.init_app(app)  # single sign-on settings (OIDC_*), checked at start-up
    app.register_blueprint(bp)
    from helpdesk.accounts.cli import COMMANDS

    for command in COMMANDS:  # `helpdesk accounts …` and friends
        app.cli.add_command(command)
