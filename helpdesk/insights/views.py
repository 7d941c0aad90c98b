"""HTTP views of this domain."""
from helpdesk.insights import bp  # noqa: F401
