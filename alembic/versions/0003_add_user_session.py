"""add user_session: login sessions (token hashes) and login_throttle (login attempt counts)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Two new tables, nothing else touched: no lock on user_list, no table copy.

The downgrade drops both without archiving them, deliberately: dropping user_session revokes
every session (everyone logs in again after the next upgrade) and dropping login_throttle
forgets the failed-login counts. Neither holds user data. Restoring sessions would be wrong:
a password changed or a user deleted while the schema was below 0003 (by code that knows no
sessions) would not have revoked them, so they would come back for people who should have lost
them. docs/migrations.md says so too.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables whose rows this revision's downgrade drops on purpose (the migration suite checks that
# they, and only they, come back empty).
discarded_on_downgrade = ("user_session", "login_throttle")

logger = logging.getLogger(f"alembic.revision.{revision}")


# lint: allow multiple-ddl because every statement is IF NOT EXISTS / IF EXISTS, so a rerun resumes
def upgrade() -> None:
    # Two new, empty tables: nothing else is locked or copied. Each statement skips what a
    # killed earlier run already made, since on MySQL each one commits on its own.
    op.create_table(
        "user_session",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_session_token_hash")),
        # sha256 hex digests: ASCII, compared byte-wise.
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_user_session_user_id"), "user_session", ["user_id"], if_not_exists=True
    )
    op.create_table(
        "login_throttle",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_login_throttle")),
        # sha256 hex digests: ASCII, compared byte-wise.
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_login_throttle_window_ends_at"),
        "login_throttle",
        ["window_ends_at"],
        if_not_exists=True,
    )


# lint: allow multiple-ddl because both drops are IF EXISTS, so a rerun resumes
def downgrade() -> None:
    # Not archived, on purpose (see the module docstring): every session is revoked.
    if not context.is_offline_mode():
        logger.warning(
            "0003 downgrade: dropping user_session revokes every session (users log in again "
            "after the next upgrade); login_throttle's failed-login counts are forgotten"
        )
    # lint: allow drop-without-archive because failed-login counts are transient, not user data
    op.drop_table("login_throttle", if_exists=True)
    # lint: allow drop-without-archive because restored sessions could outlive a revocation
    op.drop_table("user_session", if_exists=True)
