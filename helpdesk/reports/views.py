"""HTTP views of this domain."""
from helpdesk.reports import bp  # noqa: F401
