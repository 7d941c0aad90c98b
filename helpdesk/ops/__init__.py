"""Operations: backups and restores, personal-data duties (APPI), metrics, structured logs, storage."""
import logging

logger = logging.getLogger(__name__)


def init_app(app) -> None:
    """Request ids and JSON logs, metrics (/metrics), the pooler setting, and the backup/privacy/storage commands."""
    from helpdesk.ops import logs, metrics

    logs.init_app(app)
    metrics.init_app(app)
    _pooler(app)
    from helpdesk.ops.cli import COMMANDS

    for command in COMMANDS:  # `helpdesk ops …` and friends
        app.cli.add_command(command)


def _pooler(app) -> None:
    """DATABASE_POOLER=pgbouncer: no server-side prepared statements (psycopg prepares a statement after
    5 runs on a connection; PgBouncer < 1.21 in transaction mode hands the next transaction another
    server connection, where that statement does not exist)."""
    import os

    from sqlalchemy import event

    from helpdesk.extensions import db

    app.config.setdefault("DATABASE_POOLER", os.environ.get("DATABASE_POOLER") or None)
    if app.config["DATABASE_POOLER"] != "pgbouncer":
        return
    with app.app_context():
        engine = db.engine
        if engine.dialect.name != "postgresql":
            return

        @event.listens_for(engine, "connect")
        def _no_prepare(dbapi_conn, _record):
            dbapi_conn.prepare_threshold = None
