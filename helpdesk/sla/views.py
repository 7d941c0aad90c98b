"""HTTP views of this domain."""
from helpdesk.sla import bp  # noqa: F401
