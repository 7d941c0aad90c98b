"""HTTP views of this domain."""
from helpdesk.notify import bp  # noqa: F401
