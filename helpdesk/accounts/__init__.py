"""Accounts: organisations, users, login, onboarding."""
import logging

from flask import Blueprint

logger = logging.getLogger(__name__)
bp = Blueprint("accounts", __name__, template_folder="templates")

from helpdesk.accounts import admin_views, views  # noqa: E402,F401
