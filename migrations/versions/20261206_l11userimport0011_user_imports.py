"""User import in the browser (issue 16.7): the uploaded file, its dry run, the confirmed job's progress.

Revision ID: l11userimport0011
Revises: k10bigram0010
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from helpdesk.common import UTCDateTime

revision = "l11userimport0011"
down_revision = "k10bigram0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("encoding", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("confirmed_renames", sa.JSON(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('checked', 'queued', 'running', 'done', 'failed')",
                           name=op.f("ck_user_imports_status")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_user_imports_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["confirmed_by_id"], ["users.id"],
                                name=op.f("fk_user_imports_confirmed_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_imports")),
        sa.UniqueConstraint("public_id", name=op.f("uq_user_imports_public_id")),
    )
    op.create_index(op.f("ix_user_imports_created_by_id"), "user_imports", ["created_by_id"], unique=False)
    op.create_index(op.f("ix_user_imports_status"), "user_imports", ["status"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_user_imports_status"), table_name="user_imports")
    op.drop_index(op.f("ix_user_imports_created_by_id"), table_name="user_imports")
    op.drop_table("user_imports")
