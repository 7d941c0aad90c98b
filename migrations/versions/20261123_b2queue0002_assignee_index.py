"""Queue speed: (assignee_id, status, created_at, id) index and joint assignee/status statistics.

Revision ID: b2queue0002
Revises: a1extras0001
Create Date: 2026-11-23
"""
from alembic import op

revision = "b2queue0002"
down_revision = "a1extras0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_assignee_status")
        batch_op.create_index("ix_tickets_assignee_status_created", ["assignee_id", "status", "created_at", "id"],
                              unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE STATISTICS IF NOT EXISTS st_tickets_assignee_status (mcv, dependencies) "
                   "ON assignee_id, status FROM tickets")
        op.execute("ANALYZE tickets")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_tickets_assignee_status")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_assignee_status_created")
        batch_op.create_index("ix_tickets_assignee_status", ["assignee_id", "status"], unique=False)
