"""Ticket search: a GIN index of two-character substrings for 1–2 character terms (PostgreSQL, issue 19).

pg_trgm serves terms of three or more characters; two-kanji words (印刷, 廃棄, 納品) had to be found by
walking tickets newest first, which inside a broad filter with few matches read a whole category.
The index is on the expression hd_bigrams(search_text); helpdesk/tickets/search.py keeps the same
statements for databases built with create_all (tests).
Nothing on SQLite (its FTS5 trigram table and LIKE serve the embedded default).

Revision ID: k10bigram0010
Revises: j9totp0009
Create Date: 2026-12-06
"""
from alembic import op

revision = "k10bigram0010"
down_revision = "j9totp0009"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE OR REPLACE FUNCTION hd_bigrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT "
               "PARALLEL SAFE COST 5000 AS $$ SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (SELECT substr(t, i, 2) AS g "
               "FROM generate_series(1, length(t) - 1) AS i) s WHERE g !~ '\\s' $$")
    op.execute("CREATE INDEX IF NOT EXISTS ix_tickets_search_bigram ON tickets USING gin (hd_bigrams(search_text))")
    op.execute("ANALYZE tickets")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_tickets_search_bigram")
    op.execute("DROP FUNCTION IF EXISTS hd_bigrams(text)")
