"""Database extras the ORM cannot express: pg_trgm + trigram indexes (PostgreSQL),
FTS5 trigram table + triggers and append-only audit triggers (SQLite).

PostgreSQL needs a UTF-8 LC_CTYPE (e.g. C.UTF-8) for pg_trgm to index Japanese text.

Revision ID: a1extras0001
Revises: d82e0df92317
Create Date: 2026-11-23
"""
from alembic import op

revision = "a1extras0001"
down_revision = "d82e0df92317"
branch_labels = None
depends_on = None

POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_tickets_search_trgm ON tickets USING gin (search_text gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_users_name_trgm ON users USING gin ((replace(lower(name), ' ', '')) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_users_email_trgm ON users USING gin (email gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_users_phone_trgm ON users USING gin ((replace(phone, '-', '')) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_organisations_name_trgm ON organisations USING gin ((replace(lower(name), ' ', '')) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_organisations_code_trgm ON organisations USING gin ((lower(code)) gin_trgm_ops)",
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n       BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log\n       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
]

SQLITE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS tickets_fts USING fts5( search_text, content='tickets', content_rowid='id', tokenize='trigram');",
    "CREATE TRIGGER IF NOT EXISTS tickets_fts_ai AFTER INSERT ON tickets BEGIN INSERT INTO tickets_fts(rowid, search_text) VALUES (new.id, new.search_text); END;",
    "CREATE TRIGGER IF NOT EXISTS tickets_fts_ad AFTER DELETE ON tickets BEGIN INSERT INTO tickets_fts(tickets_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END;",
    "CREATE TRIGGER IF NOT EXISTS tickets_fts_au AFTER UPDATE OF search_text ON tickets BEGIN INSERT INTO tickets_fts(tickets_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); INSERT INTO tickets_fts(rowid, search_text) VALUES (new.id, new.search_text); END;",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
]


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in POSTGRES:
            op.execute(statement)
    elif bind.dialect.name == "sqlite":
        for statement in SQLITE:
            op.execute(statement)
        # Index rows that existed before the FTS table.
        op.execute("INSERT INTO tickets_fts(tickets_fts) VALUES ('rebuild')")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS tickets_fts")
