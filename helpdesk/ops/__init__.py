"""Operations: backups and restores, personal-data duties (APPI), metrics, structured logs, storage."""
import logging

logger = logging.getLogger(__name__)


def init_app(app) -> None:
    """Nothing to register on the app yet beyond the CLI (helpdesk.ops.cli, listed in helpdesk.cli)."""
