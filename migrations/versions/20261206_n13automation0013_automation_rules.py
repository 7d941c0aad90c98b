"""Automation rules (issue 17.1): rules with conditions/actions and the record of each application.

Revision ID: n13automation0013
Revises: l11userimport0011
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from helpdesk.common import UTCDateTime

revision = "n13automation0013"
down_revision = "l11userimport0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "automation_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("trigger_on", sa.String(length=10), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=True),
        sa.Column("last_run_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("trigger_on IN ('created', 'updated', 'reply', 'timed')",
                           name=op.f("ck_automation_rules_trigger_on")),
        sa.CheckConstraint("interval_minutes IS NULL OR interval_minutes BETWEEN 5 AND 10080",
                           name=op.f("ck_automation_rules_interval")),
        sa.CheckConstraint("trigger_on <> 'timed' OR interval_minutes IS NOT NULL",
                           name=op.f("ck_automation_rules_timed_interval")),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], name=op.f("fk_automation_rules_updated_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_rules")),
    )
    op.create_index(op.f("ix_automation_rules_created_at"), "automation_rules", ["created_at"], unique=False)
    op.create_table(
        "automation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("trigger_key", sa.String(length=40), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["rule_id"], ["automation_rules.id"], name=op.f("fk_automation_runs_rule_id_automation_rules"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_automation_runs_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
        sa.UniqueConstraint("rule_id", "ticket_id", "trigger_key", name="uq_automation_runs_rule_ticket_key"),
    )
    op.create_index("ix_automation_runs_rule_at", "automation_runs", ["rule_id", "at"], unique=False)
    op.create_index(op.f("ix_automation_runs_ticket_id"), "automation_runs", ["ticket_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_automation_runs_ticket_id"), table_name="automation_runs")
    op.drop_index("ix_automation_runs_rule_at", table_name="automation_runs")
    op.drop_table("automation_runs")
    op.drop_index(op.f("ix_automation_rules_created_at"), table_name="automation_rules")
    op.drop_table("automation_rules")
