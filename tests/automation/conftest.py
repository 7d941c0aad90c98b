"""A real SMTP peer for the mail action (the notify tests' loopback sink)."""
from tests.notify.conftest import mail_port, smtp_sink  # noqa: F401
