"""HTTP views of this domain."""
from helpdesk.tickets import bp  # noqa: F401
