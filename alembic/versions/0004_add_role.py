"""add role: user_list.role, "user" or "admin", NOT NULL DEFAULT 'user'

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

The server default fills every existing row, and lets MariaDB add the column instantly
(a metadata change, no table copy). The downgrade archives the roles first, so the admins are
admins again after the next upgrade.
"""

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from app.backend import instant_clause, is_mysql
from app.migrate.archive import archive_columns, restore_columns

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant() -> str:
    """`, ALGORITHM=INSTANT` where the server adds/drops a column without copying the table."""
    return instant_clause(op.get_context().dialect, offline=context.is_offline_mode())


def upgrade() -> None:
    if is_mysql(op.get_context().dialect):
        op.execute(
            f"ALTER TABLE user_list ADD COLUMN role VARCHAR(16) NOT NULL DEFAULT 'user'{_instant()}"
        )
    else:
        op.add_column(
            "user_list",
            sa.Column("role", sa.String(length=16), nullable=False, server_default="user"),
        )
    restore_columns(revision, "user_list", ["role"])  # what a downgrade of 0004 archived


def downgrade() -> None:
    archive_columns(revision, "user_list", ["role"])  # lossless: upgrade puts the roles back
    if is_mysql(op.get_context().dialect):
        op.execute(f"ALTER TABLE user_list DROP COLUMN role{_instant()}")
    elif sqlite3.sqlite_version_info >= (3, 35, 0):
        # SQLite's own DROP COLUMN cuts the column out of the stored CREATE TABLE text: the
        # table is exactly as 0003 left it. A batch copy would rebuild it from reflection and
        # rewrite that text (columns 0002 appended would move inside the column list).
        op.drop_column("user_list", "role")
    else:
        # Older SQLite: the batch copy, which forgets AUTOINCREMENT unless told.
        with op.batch_alter_table(
            "user_list", table_kwargs={"sqlite_autoincrement": True}
        ) as batch_op:
            batch_op.drop_column("role")
