"""seed promises: opt-outs per broadcast, test sends, number limits, recipients per country

Revision ID: 0014_seed_promises
Revises: 0012_platforms
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_seed_promises"
down_revision = "0012_platforms"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("opted_out_count", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accepted_by_country", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "assume_international", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("whatsapp_configs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("throughput_level", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("limits_checked_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "test_sends",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("broadcast_id", sa.String(length=36), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("wamid", sa.String(length=128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("sent_by", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_test_sends_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_sends")),
        sa.UniqueConstraint("wamid", name=op.f("uq_test_sends_wamid")),
    )
    with op.batch_alter_table("test_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_test_sends_phone"), ["phone"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("test_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_sends_phone"))
    op.drop_table("test_sends")
    with op.batch_alter_table("whatsapp_configs", schema=None) as batch_op:
        batch_op.drop_column("limits_checked_at")
        batch_op.drop_column("throughput_level")
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_column("assume_international")
        batch_op.drop_column("accepted_by_country")
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_column("opted_out_at")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("opted_out_count")
