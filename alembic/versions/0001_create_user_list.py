"""create user_list: the tutorial's table, with a password hash instead of a plaintext password

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.migrate.archive import archive_table, restore_table

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_list",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=10), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_list")),
        sa.UniqueConstraint("username", name=op.f("uq_user_list_username")),
        # Byte-wise, case-sensitive usernames on MySQL/MariaDB, as SQLite compares them.
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        # SQLite would otherwise reuse the id of a deleted newest row, and archives are keyed
        # by id: a newcomer must never inherit a deleted user's archived data.
        sqlite_autoincrement=True,
    )
    restore_table(revision, "user_list")  # the users a downgrade to base archived


def downgrade() -> None:
    # Below 0001 there is no service at all, but the users are kept for the next upgrade.
    archive_table(revision, "user_list")
    op.drop_table("user_list")
