"""add email: the tutorial's migration, a nullable varchar(12)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from app.migration_archive import archive_columns, restore_columns

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant_suffix() -> str:
    """`, ALGORITHM=INSTANT` where the server can add/drop a column without copying the table."""
    if context.is_offline_mode():
        return ", ALGORITHM=INSTANT"
    dialect = op.get_bind().dialect
    version = dialect.server_version_info or ()
    is_mariadb = bool(getattr(dialect, "is_mariadb", False))
    supported = version >= (10, 4) if is_mariadb else version >= (8, 0, 29)
    return ", ALGORITHM=INSTANT" if supported else ""


def upgrade() -> None:
    if op.get_context().dialect.name == "mysql":
        op.execute(f"ALTER TABLE user_list ADD COLUMN email VARCHAR(12) NULL{_instant_suffix()}")
    else:
        op.add_column("user_list", sa.Column("email", sa.String(length=12), nullable=True))
    restore_columns(revision, "user_list", ["email"])  # what a downgrade of 0002 archived


def downgrade() -> None:
    archive_columns(revision, "user_list", ["email"])  # lossless: upgrade puts the emails back
    if op.get_context().dialect.name == "mysql":
        op.execute(f"ALTER TABLE user_list DROP COLUMN email{_instant_suffix()}")
    else:
        # The batch copy rebuilds the table from reflection, which forgets AUTOINCREMENT.
        with op.batch_alter_table(
            "user_list", table_kwargs={"sqlite_autoincrement": True}
        ) as batch_op:
            batch_op.drop_column("email")
