"""HTTP views of this domain."""
from helpdesk.api import bp  # noqa: F401
