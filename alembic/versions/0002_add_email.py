"""add email: the tutorial's migration, a nullable varchar(12)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from app.backend import instant_clause, is_mysql
from app.migrate.archive import archive_columns, restore_columns

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant() -> str:
    """`, ALGORITHM=INSTANT` where the server adds/drops a column without copying the table."""
    return instant_clause(op.get_context().dialect, offline=context.is_offline_mode())


def upgrade() -> None:
    if is_mysql(op.get_context().dialect):
        op.execute(f"ALTER TABLE user_list ADD COLUMN email VARCHAR(12) NULL{_instant()}")
    else:
        op.add_column("user_list", sa.Column("email", sa.String(length=12), nullable=True))
    restore_columns(revision, "user_list", ["email"])  # what a downgrade of 0002 archived


def downgrade() -> None:
    archive_columns(revision, "user_list", ["email"])  # lossless: upgrade puts the emails back
    if is_mysql(op.get_context().dialect):
        op.execute(f"ALTER TABLE user_list DROP COLUMN email{_instant()}")
    else:
        # The batch copy rebuilds the table from reflection, which forgets AUTOINCREMENT.
        with op.batch_alter_table(
            "user_list", table_kwargs={"sqlite_autoincrement": True}
        ) as batch_op:
            batch_op.drop_column("email")
