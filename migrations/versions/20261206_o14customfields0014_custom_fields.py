"""Custom fields (issue 17.2): administrator-defined ticket fields and their typed values per ticket.

Revision ID: o14customfields0014
Revises: m12oidc0012
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from helpdesk.common import UTCDateTime

revision = "o14customfields0014"
down_revision = "m12oidc0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "custom_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("label_ja", sa.String(length=100), nullable=False),
        sa.Column("label_en", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=True),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("type IN ('text', 'number', 'date', 'choice', 'checkbox')",
                           name=op.f("ck_custom_fields_custom_field_type")),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"], name=op.f("fk_custom_fields_category_id_categories"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_fields")),
        sa.UniqueConstraint("key", name=op.f("uq_custom_fields_key")),
    )
    op.create_index(op.f("ix_custom_fields_created_at"), "custom_fields", ["created_at"], unique=False)
    op.create_table(
        "custom_field_values",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("field_id", sa.Integer(), nullable=False),
        sa.Column("value_text", sa.String(length=200), nullable=True),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("value_bool", sa.Boolean(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["field_id"], ["custom_fields.id"],
                                name=op.f("fk_custom_field_values_field_id_custom_fields"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_custom_field_values_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id", "field_id", name=op.f("pk_custom_field_values")),
    )
    op.create_index(op.f("ix_custom_field_values_field_id"), "custom_field_values", ["field_id"], unique=False)
    op.create_index("ix_cf_values_text", "custom_field_values", ["field_id", "value_text", "ticket_id"], unique=False)
    op.create_index("ix_cf_values_number", "custom_field_values", ["field_id", "value_number", "ticket_id"],
                    unique=False)
    op.create_index("ix_cf_values_date", "custom_field_values", ["field_id", "value_date", "ticket_id"], unique=False)
    op.create_index("ix_cf_values_bool", "custom_field_values", ["field_id", "value_bool", "ticket_id"], unique=False)


def downgrade():
    op.drop_index("ix_cf_values_bool", table_name="custom_field_values")
    op.drop_index("ix_cf_values_date", table_name="custom_field_values")
    op.drop_index("ix_cf_values_number", table_name="custom_field_values")
    op.drop_index("ix_cf_values_text", table_name="custom_field_values")
    op.drop_index(op.f("ix_custom_field_values_field_id"), table_name="custom_field_values")
    op.drop_table("custom_field_values")
    op.drop_index(op.f("ix_custom_fields_created_at"), table_name="custom_fields")
    op.drop_table("custom_fields")
