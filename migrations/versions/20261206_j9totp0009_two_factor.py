"""TOTP two-factor sign-in for staff (issue 17.6): secrets, recovery codes, the per-role policy.

Revision ID: j9totp0009
Revises: i8timelog0008
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from helpdesk.common import UTCDateTime

revision = "j9totp0009"
down_revision = "i8timelog0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_totp",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("enabled_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_totp_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_totp")),
    )
    op.create_table(
        "user_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_recovery_codes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_recovery_codes")),
    )
    op.create_index(op.f("ix_user_recovery_codes_user_id"), "user_recovery_codes", ["user_id"], unique=False)
    op.create_table(
        "twofactor_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("required_roles", sa.String(length=120), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_twofactor_policy_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_twofactor_policy")),
    )


def downgrade():
    op.drop_table("twofactor_policy")
    op.drop_index(op.f("ix_user_recovery_codes_user_id"), table_name="user_recovery_codes")
    op.drop_table("user_recovery_codes")
    op.drop_table("user_totp")
