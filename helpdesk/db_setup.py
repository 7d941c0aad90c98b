"""Database extras that the ORM metadata cannot express (PostgreSQL extensions and indexes).

Every statement here is also in a migration; tests that build the schema with create_all()
call `install_postgres_extras` so both paths give the same database.
"""
from __future__ import annotations

from helpdesk._optional import import_optional

#: Modules that may define POSTGRES_DDL (a list of idempotent SQL statements).
DDL_MODULES = ("helpdesk.tickets.search", "helpdesk.insights.models", "helpdesk.sla.models")


def postgres_ddl() -> list[str]:
    statements: list[str] = []
    for name in DDL_MODULES:
        module = import_optional(name)
        statements += list(getattr(module, "POSTGRES_DDL", []) if module else [])
    return statements


def install_postgres_extras(engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for statement in postgres_ddl():
            conn.exec_driver_sql(statement)
