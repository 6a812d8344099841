"""recipients: no per-row foreign-key triggers for broadcast and import, partial wa_id index

A bulk import inserts a million recipients in one statement; on PostgreSQL each row fired two
foreign-key triggers (a locking look-up of the same broadcast and import row every time), about
half the cost of the insert. Every insert of recipients is for a broadcast read in the same
transaction (the import and its own import row), and neither broadcasts nor imports are ever
deleted, so those two references are kept by the code; contact_id keeps its constraint (NULL for
most rows, where it costs nothing). wa_id is unknown until a message is sent, so its index leaves
NULLs out.

Revision ID: 0015_recipients_bulk_load
Revises: 0018_retry_link
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_recipients_bulk_load"
down_revision = "0018_retry_link"
branch_labels = None
depends_on = None

_NOT_NULL = sa.text("wa_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_constraint("fk_recipients_broadcast_id_broadcasts", type_="foreignkey")
        batch_op.drop_constraint("fk_recipients_import_id_imports", type_="foreignkey")
        batch_op.drop_index("ix_recipients_wa_id")
        batch_op.create_index(
            "ix_recipients_wa_id",
            ["wa_id"],
            unique=False,
            postgresql_where=_NOT_NULL,
            sqlite_where=_NOT_NULL,
        )


def downgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_recipients_wa_id")
        batch_op.create_index("ix_recipients_wa_id", ["wa_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_recipients_import_id_imports",
            "imports",
            ["import_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            "fk_recipients_broadcast_id_broadcasts",
            "broadcasts",
            ["broadcast_id"],
            ["id"],
            ondelete="CASCADE",
        )
