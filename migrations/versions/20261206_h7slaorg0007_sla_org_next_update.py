"""SLA per client organisation and the "next update" target (issue 17.7).

Revision ID: h7slaorg0007
Revises: g6privacy0006
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from helpdesk.common import UTCDateTime

revision = "h7slaorg0007"
down_revision = "g6privacy0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sla_policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("next_update_minutes", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_sla_policies_organisation_id_organisations"), "organisations",
                                    ["organisation_id"], ["id"], ondelete="CASCADE")
        batch_op.create_index(batch_op.f("ix_sla_policies_organisation_id"), ["organisation_id"], unique=False)
        batch_op.drop_constraint("uq_sla_policies_scope", type_="unique")
        batch_op.create_unique_constraint("uq_sla_policies_scope",
                                          ["priority", "organisation_id", "role", "category_code"])
        batch_op.create_check_constraint("next_update", "next_update_minutes IS NULL OR next_update_minutes > 0")
    with op.batch_alter_table("sla_clocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_update_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("next_update_due_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_update_risk_at", UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("sla_clocks", schema=None) as batch_op:
        batch_op.drop_column("next_update_risk_at")
        batch_op.drop_column("next_update_due_at")
        batch_op.drop_column("next_update_minutes")
    with op.batch_alter_table("sla_policies", schema=None) as batch_op:
        batch_op.drop_constraint("ck_sla_policies_next_update", type_="check")
        batch_op.drop_constraint("uq_sla_policies_scope", type_="unique")
        batch_op.create_unique_constraint("uq_sla_policies_scope", ["priority", "role", "category_code"])
        batch_op.drop_index(batch_op.f("ix_sla_policies_organisation_id"))
        batch_op.drop_constraint(batch_op.f("fk_sla_policies_organisation_id_organisations"), type_="foreignkey")
        batch_op.drop_column("next_update_minutes")
        batch_op.drop_column("organisation_id")
