"""Time tracking (issue 17.4): minutes an agent logs with a reply or note.

Revision ID: i8timelog0008
Revises: h7slaorg0007
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "i8timelog0008"
down_revision = "h7slaorg0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("minutes", sa.Integer(), nullable=True))
        batch_op.create_check_constraint("minutes", "minutes BETWEEN 1 AND 1440")
    op.create_index("ix_comments_timelog", "comments", ["created_at"], unique=False,
                    postgresql_where=sa.text("minutes IS NOT NULL"), sqlite_where=sa.text("minutes IS NOT NULL"))


def downgrade():
    op.drop_index("ix_comments_timelog", table_name="comments")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_constraint("ck_comments_minutes", type_="check")
        batch_op.drop_column("minutes")
