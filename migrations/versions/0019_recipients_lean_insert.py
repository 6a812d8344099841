"""recipients: partial user_id index, no foreign-key trigger for contact_id

A recipient's user_id (the business-scoped user id) is only known once WhatsApp reports on a
sent message, so at insert time it is always NULL; a full index still took an entry for every
imported row (about 15% of a bulk insert's cost on PostgreSQL). The only query that uses it
looks a user id up (`user_id = :id`), which a partial index WHERE user_id IS NOT NULL serves on
both databases. contact_id loses its foreign key for the reason broadcast_id and import_id did
in 0015_recipients_bulk_load: the per-row trigger cost about 8% of the insert, every contact_id
written is read from contacts in the same transaction, and contacts are never deleted.

Revision ID: 0019_recipients_lean_insert
Revises: 0015_recipients_bulk_load
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_recipients_lean_insert"
down_revision = "0015_recipients_bulk_load"
branch_labels = None
depends_on = None

_NOT_NULL = sa.text("user_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_constraint("fk_recipients_contact_id_contacts", type_="foreignkey")
        batch_op.drop_index("ix_recipients_user_id")
        batch_op.create_index(
            "ix_recipients_user_id",
            ["user_id"],
            unique=False,
            postgresql_where=_NOT_NULL,
            sqlite_where=_NOT_NULL,
        )


def downgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_recipients_user_id")
        batch_op.create_index("ix_recipients_user_id", ["user_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_recipients_contact_id_contacts",
            "contacts",
            ["contact_id"],
            ["id"],
            ondelete="SET NULL",
        )
