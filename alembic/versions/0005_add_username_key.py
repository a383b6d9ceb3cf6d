"""add username_key: look-alike usernames made unique, by expand, backfill and contract

Expand: a nullable column (INSTANT on MariaDB). Backfill: every existing user's canonical key
(app.usernames), in batches, one commit per batch on MySQL/MariaDB, progress on stderr.
Contract: the unique index, built online, which is the look-alike check: if existing users
collide it fails and they are listed by id. Then a last pass over users the previous release
created meanwhile.

Every step is resumable: a run killed half-way left its DDL and finished batches committed on
MySQL/MariaDB (nothing on SQLite, where the run is one transaction), and the next run skips what
exists and only keys users whose key is still NULL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from app.backend import instant_clause, is_mariadb, is_mysql
from app.config import get_settings
from app.migrate.backfill import batch_commits
from app.migrate.username_keys import (
    COLUMN,
    INDEX,
    collisions_named,
    has_key_column,
    has_key_index,
    key_usernames,
)
from app.models import USERNAME_KEY_MAX

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _add_column() -> None:
    dialect = op.get_context().dialect
    if is_mysql(dialect):
        # Binary collation: the key is compared exactly, as on SQLite.
        op.execute(
            f"ALTER TABLE user_list ADD COLUMN {COLUMN} VARCHAR({USERNAME_KEY_MAX}) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL"
            f"{instant_clause(dialect, offline=context.is_offline_mode())}"
        )
    else:
        op.add_column(
            "user_list", sa.Column(COLUMN, sa.String(length=USERNAME_KEY_MAX), nullable=True)
        )


def _add_unique_index() -> None:
    # Look-alikes make the build fail: their keys are cleared (committed) and they are listed.
    with batch_commits(op.get_context()), collisions_named(op.get_bind()):
        if is_mysql(op.get_context().dialect):
            # Built while the table takes reads and writes; the server refuses rather than lock.
            op.execute(
                f"CREATE UNIQUE INDEX {INDEX} ON user_list ({COLUMN}) ALGORITHM=INPLACE LOCK=NONE"
            )
        else:
            op.create_index(INDEX, "user_list", [COLUMN], unique=True)


def _key_usernames() -> None:
    with batch_commits(op.get_context()):
        key_usernames(op.get_bind(), get_settings(), find_collisions=False)


# lint: allow multiple-ddl because each step skips what a killed run did, so a rerun resumes
def upgrade() -> None:
    if context.is_offline_mode():
        # --sql has no rows to read: the keys are computed by `python -m app.migrate
        # backfill-keys` once this SQL has run (the index takes NULL keys meanwhile).
        _add_column()
        _add_unique_index()
        op.get_context().impl.static_output(
            "-- 0005: now run `python -m app.migrate backfill-keys` to key existing users"
        )
        return
    bind = op.get_bind()
    if not has_key_column(bind):
        _add_column()
    _key_usernames()
    if not has_key_index(bind):
        _add_unique_index()  # raises, listing the users, if existing users collide
    _key_usernames()  # users the previous release created while the index was built


def downgrade() -> None:
    dialect = op.get_context().dialect
    if is_mysql(dialect):
        # One statement: dropping the index cannot be INSTANT, but needs no copy either.
        algorithm = "NOCOPY" if is_mariadb(dialect) else "INPLACE"
        # lint: allow drop-without-archive because the key is derived: upgrade recomputes it
        op.execute(
            f"ALTER TABLE user_list DROP INDEX {INDEX}, DROP COLUMN {COLUMN}, "
            f"ALGORITHM={algorithm}, LOCK=NONE"
        )
    else:
        op.drop_index(INDEX, table_name="user_list")
        # SQLite's own DROP COLUMN (3.35+) rewrites the rows in place and keeps the table's
        # definition as it was before the ADD COLUMN; no batch copy of the table.
        # lint: allow drop-without-archive because the key is derived: upgrade recomputes it
        op.execute(f"ALTER TABLE user_list DROP COLUMN {COLUMN}")
