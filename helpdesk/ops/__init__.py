"""Operations: backups and restores, personal-data duties (APPI), metrics, structured logs, storage."""
import logging

logger = logging.getLogger(__name__)


def init_app(app) -> None:
    """Request ids and JSON logs, metrics (/metrics); the CLI commands are in helpdesk.ops.cli (listed in helpdesk.cli)."""
    from helpdesk.ops import logs, metrics

    logs.init_app(app)
    metrics.init_app(app)
