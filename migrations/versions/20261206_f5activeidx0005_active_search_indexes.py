"""Search within the active queue: partial indexes of active tickets by recency (issue 19).

A search inside "active" (new/open/pending/escalated) or "mine & active" walks these newest first and
stops after the candidate limit; without them PostgreSQL had to collect every active ticket (or every
one of the agent's) before sorting (242 ms → 22 ms at 1,000,000 tickets for "mine").

Revision ID: f5activeidx0005
Revises: e4knowledge0004
Create Date: 2026-12-06
"""
from alembic import op
from sqlalchemy import text

revision = "f5activeidx0005"
down_revision = "e4knowledge0004"
branch_labels = None
depends_on = None

_ACTIVE = "status IN ('new', 'open', 'pending', 'escalated')"


def upgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_open_created", ["created_at", "id"], unique=False,
                              postgresql_where=text(_ACTIVE), sqlite_where=text(_ACTIVE))
        batch_op.create_index("ix_tickets_open_assignee", ["assignee_id", "created_at", "id"], unique=False,
                              postgresql_where=text(_ACTIVE), sqlite_where=text(_ACTIVE))


def downgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_open_assignee")
        batch_op.drop_index("ix_tickets_open_created")
