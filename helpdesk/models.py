"""Import every domain's models so the metadata knows all tables (create_all, Alembic)."""
from helpdesk._optional import import_optional

MODEL_MODULES = (
    "helpdesk.accounts.models",
    "helpdesk.tickets.models",
    "helpdesk.notify.models",
    "helpdesk.sla.models",
    "helpdesk.manuals.models",
    "helpdesk.insights.models",
    "helpdesk.api.models",
    "helpdesk.reports.models",
    "helpdesk.ops.models",
)

for _name in MODEL_MODULES:
    import_optional(_name)
