"""The tickets domain: agent queue and ticket page, phone intake, requester portal."""
import logging

from flask import Blueprint

from helpdesk._optional import import_optional

logger = logging.getLogger(__name__)
bp = Blueprint("tickets", __name__, template_folder="templates")

from helpdesk.tickets import views  # noqa: E402,F401  (agent queue, ticket page)

import_optional("helpdesk.tickets.intake")  # phone intake routes
import_optional("helpdesk.tickets.portal")  # requester portal routes
import_optional("helpdesk.tickets.attachments")  # attachment download routes
