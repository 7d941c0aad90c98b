"""Database extras that the ORM metadata cannot express (PostgreSQL extensions and indexes).

Every statement here is also in a migration; tests that build the schema with create_all()
call `install_postgres_extras` so both paths give the same database.
"""
from __future__ import annotations

from helpdesk.accounts import models as accounts_models
from helpdesk.tickets import contacts, search


def postgres_ddl() -> list[str]:
    """Idempotent PostgreSQL statements (extensions, GIN indexes, statistics) of every domain."""
    return [*search.POSTGRES_DDL, *contacts.POSTGRES_DDL, *accounts_models.POSTGRES_DDL]


def install_postgres_extras(engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for statement in postgres_ddl():
            conn.exec_driver_sql(statement)


def sqlite_ddl() -> list[str]:
    """Idempotent statements for the embedded database (FTS5 table and its triggers, …)."""
    return [*search.SQLITE_DDL, *accounts_models.SQLITE_DDL]


def install_sqlite_extras(engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        for statement in sqlite_ddl():
            raw.cursor().executescript(statement)
        raw.commit()
    finally:
        raw.close()


def install_extras(engine) -> None:
    install_postgres_extras(engine)
    install_sqlite_extras(engine)


def extra_object_names() -> set[str]:
    """Names of tables/indexes/triggers created by raw DDL, so schema comparison leaves them alone."""
    import re

    names: set[str] = set()
    pattern = re.compile(r"CREATE\s+(?:UNIQUE\s+)?(?:VIRTUAL\s+)?(?:INDEX|TABLE|TRIGGER)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                         r"\"?(\w+)\"?", re.IGNORECASE)
    for statement in postgres_ddl() + sqlite_ddl():
        names.update(pattern.findall(statement))
    return names


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    if reflected and compare_to is None and name:
        extras = extra_object_names()
        if name in extras or any(name.startswith(extra + "_") for extra in extras):
            return False
    return True
