"""Personal-data duties (issue 18.6): marks of anonymised users and tickets (idempotent retention runs).

Revision ID: g6privacy0006
Revises: f5activeidx0005
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from helpdesk.common import UTCDateTime

revision = "g6privacy0006"
down_revision = "f5activeidx0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "anonymisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_type", sa.String(length=10), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=10), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_label", sa.String(length=254), nullable=False),
        sa.CheckConstraint("object_type IN ('user', 'ticket')", name=op.f("ck_anonymisations_object_type")),
        sa.CheckConstraint("reason IN ('request', 'retention')", name=op.f("ck_anonymisations_reason")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anonymisations")),
        sa.UniqueConstraint("object_type", "object_id", name=op.f("uq_anonymisations_object_type")),
    )


def downgrade():
    op.drop_table("anonymisations")
