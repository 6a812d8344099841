"""contacts known by business-scoped user id; a recipient's earlier wamids

Revision ID: 0012_platforms
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_platforms"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.alter_column("phone", existing_type=sa.String(length=20), nullable=True)
        batch_op.add_column(sa.Column("user_id", sa.String(length=140), nullable=True))
        batch_op.add_column(sa.Column("username", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_contacts_user_id"), ["user_id"])
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.String(length=140), nullable=True))
        batch_op.add_column(
            sa.Column("wamid_history", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.create_index(batch_op.f("ix_recipients_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recipients_user_id"))
        batch_op.drop_column("wamid_history")
        batch_op.drop_column("user_id")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_contacts_user_id"), type_="unique")
        batch_op.drop_column("username")
        batch_op.drop_column("user_id")
        batch_op.alter_column("phone", existing_type=sa.String(length=20), nullable=False)
