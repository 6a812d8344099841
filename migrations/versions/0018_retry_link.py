"""broadcasts.retry_of_id: a retry broadcast points at the broadcast it retries

Revision ID: 0018_retry_link
Revises: 0014_seed_promises
Create Date: 2026-12-01 08:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_retry_link"
down_revision = "0014_seed_promises"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_of_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_broadcasts_retry_of_id"), ["retry_of_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_broadcasts_retry_of_id_broadcasts"),
            "broadcasts",
            ["retry_of_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_broadcasts_retry_of_id_broadcasts"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_broadcasts_retry_of_id"))
        batch_op.drop_column("retry_of_id")
