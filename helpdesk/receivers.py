"""Connect each domain's signal receivers (a domain exposes `connect()` in its receivers module)."""
from helpdesk._optional import import_optional

RECEIVER_MODULES = (
    "helpdesk.sla.receivers",
    "helpdesk.notify.receivers",
    "helpdesk.insights.receivers",
    "helpdesk.manuals.receivers",
    "helpdesk.api.receivers",
)


def connect_all() -> None:
    for name in RECEIVER_MODULES:
        module = import_optional(name)
        if module is not None:
            module.connect()
