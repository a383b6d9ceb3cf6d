"""Ids and retention: archived data only ever goes back to the row it came from, and not forever.

Ids are never handed out twice, even across `downgrade base` / `upgrade 0001`; archived rows of
deleted users are dropped on restore and deleted with the user; archives expire.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Connection, inspect, text

from app.config import Settings
from app.db import create_engine
from app.main import create_app
from tests.support.alembic import (
    HEAD,
    copy_project,
    downgrade,
    run_module,
    upgrade,
    with_database,
)
from tests.support.auth import Account, register_admin


def add_three_users(connection: Connection) -> None:
    for number in (1, 2, 3):
        connection.execute(
            text("INSERT INTO user_list (username, password_hash, email) VALUES (:u, 'h', :e)"),
            {"u": f"user{number}", "e": f"u{number}@ex.io"},
        )


def delete_user_3(connection: Connection) -> None:
    """What the previous release's delete did: the row only, archives untouched."""
    connection.execute(text("DELETE FROM user_list WHERE username = 'user3'"))


def register_newcomer(connection: Connection) -> int:
    connection.execute(
        text("INSERT INTO user_list (username, password_hash) VALUES ('newcomer', 'h')")
    )
    query = text("SELECT id FROM user_list WHERE username = 'newcomer'")
    return int(connection.execute(query).scalar_one())


def emails(connection: Connection) -> dict[str, str | None]:
    rows = connection.execute(text("SELECT username, email FROM user_list"))
    return {username: email for username, email in rows}


def archive_tables(connection: Connection) -> set[str]:
    return {t for t in inspect(connection).get_table_names() if t.startswith("migration_archive_")}


async def test_a_deleted_users_email_never_goes_to_a_newcomer_across_downgrade_base(
    database_url_at_head: str,
) -> None:
    """The issue's reproduction: downgrade 0001, the previous release deletes user 3,
    downgrade base, upgrade 0001, a newcomer registers, upgrade head."""
    url = database_url_at_head
    await with_database(url, add_three_users)
    await downgrade(url, "0001")
    await with_database(url, delete_user_3)
    await downgrade(url, "base")
    await upgrade(url, "0001")

    assert await with_database(url, register_newcomer) == 4, "id 3 was handed out again"
    await upgrade(url, "head")
    assert await with_database(url, emails) == {
        "user1": "u1@ex.io",
        "user2": "u2@ex.io",
        "newcomer": None,
    }
    assert not await with_database(url, archive_tables), "user 3's email went with the archive"


async def test_ids_stay_above_the_mark_even_when_the_table_archive_was_purged(
    database_url_at_head: str,
) -> None:
    url = database_url_at_head
    await with_database(url, add_three_users)
    await downgrade(url, "0001")  # emails archived, keyed by ids 1..3
    await downgrade(url, "base")
    purged = run_module(url, "app.migrate", "archive", "purge", "--revision", "0001", "--yes")
    assert "dropped migration_archive_0001_user_list" in purged.stdout, purged.stderr
    await upgrade(url, "0001")  # an empty table: nothing to restore, but the mark is kept

    assert await with_database(url, register_newcomer) == 4
    await upgrade(url, "head")
    assert await with_database(url, emails) == {"newcomer": None}


NICKNAMES = f'''"""add nickname: a column after the head, archived by its downgrade

Revision ID: 0099
Revises: {HEAD}
"""

import sqlalchemy as sa
from alembic import op

from app.migrate.archive import archive_columns, restore_columns

revision = "0099"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("user_list", sa.Column("nickname", sa.String(length=20), nullable=True))
    restore_columns(revision, "user_list", ["nickname"])


def downgrade() -> None:
    archive_columns(revision, "user_list", ["nickname"])
    op.execute("ALTER TABLE user_list DROP COLUMN nickname")
'''


def project_with(tmp_path: Path, name: str, source: str) -> Path:
    """A copy of the project with one more revision after the head."""
    root = copy_project(tmp_path / "project")
    (root / "alembic" / "versions" / name).write_text(source)
    return root


def client_for(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test")


@asynccontextmanager
async def serving_admin(url: str) -> AsyncIterator[tuple[AsyncClient, Account]]:
    """Today's service on `url` (its schema may be ahead of the code), and an admin's login."""
    app = create_app(Settings(database_url=url, schema_ahead_policy="warn"))
    engine = create_engine(Settings(database_url=url))
    try:
        async with app.router.lifespan_context(app), client_for(app) as client:
            yield client, await register_admin(client, engine)
    finally:
        await engine.dispose()


async def test_deleting_a_user_deletes_their_archived_rows_in_the_same_transaction(
    empty_database_url: str, tmp_path: Path
) -> None:
    url = empty_database_url
    root = project_with(tmp_path, "0099_add_nickname.py", NICKNAMES)
    await upgrade(url, "head", root)
    await with_database(url, add_three_users)

    def add_nicknames(connection: Connection) -> None:
        for user_id in (1, 2, 3):
            connection.execute(
                text("UPDATE user_list SET nickname = :n WHERE id = :id"),
                {"n": f"n{user_id}", "id": user_id},
            )

    await with_database(url, add_nicknames)
    async with serving_admin(url) as (client, admin):
        await downgrade(url, HEAD, root)  # the app keeps running; the nicknames are archived
        deleted = await client.delete("/users/2", headers=admin.headers)
        assert deleted.status_code == 204, deleted.text

    def archived(connection: Connection) -> list[tuple[int, str]]:
        rows = connection.execute(
            text("SELECT id, nickname FROM migration_archive_0099_user_list ORDER BY id")
        )
        return [(int(i), n) for i, n in rows]

    # User 2's archived row went with the user; the admin (4) was archived with no nickname.
    assert await with_database(url, archived) == [(1, "n1"), (3, "n3"), (4, None)]
    await upgrade(url, "head", root)

    def nicknames(connection: Connection) -> dict[str, str | None]:
        rows = connection.execute(text("SELECT username, nickname FROM user_list"))
        return {username: nickname for username, nickname in rows}

    assert await with_database(url, nicknames) == {"user1": "n1", "user3": "n3", "root": None}


NOTES = f'''"""add user_note: notes that belong to a user (a table with a foreign key to user_list)

Revision ID: 0099
Revises: {HEAD}
"""

import sqlalchemy as sa
from alembic import op

from app.migrate.archive import archive_table, restore_table

revision = "0099"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_note",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_note"),
        sa.ForeignKeyConstraint(["user_id"], ["user_list.id"], name="fk_user_note_user_id"),
        sqlite_autoincrement=True,
    )
    restore_table(revision, "user_note")


def downgrade() -> None:
    archive_table(revision, "user_note")
    op.drop_table("user_note")
'''


@pytest.fixture
def project_with_notes(tmp_path: Path) -> Path:
    """A copy of the project with a revision after the head whose table refers to user_list."""
    return project_with(tmp_path, "0099_add_user_note.py", NOTES)


async def test_every_archive_holding_a_users_rows_forgets_them_and_restores_skip_them(
    empty_database_url: str, project_with_notes: Path
) -> None:
    url, root = empty_database_url, project_with_notes
    await upgrade(url, "head", root)
    await with_database(url, add_three_users)

    def add_notes(connection: Connection) -> None:
        for user_id, body in ((1, "one"), (2, "two"), (2, "two again"), (3, "three")):
            connection.execute(
                text("INSERT INTO user_note (user_id, body) VALUES (:u, :b)"),
                {"u": user_id, "b": body},
            )

    await with_database(url, add_notes)
    async with serving_admin(url) as (client, admin):
        await downgrade(url, HEAD, root)  # the app keeps running; the notes are archived
        deleted = await client.delete("/users/2", headers=admin.headers)
        assert deleted.status_code == 204, deleted.text

    def archived_user_ids(connection: Connection) -> list[int]:
        notes = "SELECT user_id FROM migration_archive_0099_user_note ORDER BY id"
        return [int(r[0]) for r in connection.execute(text(notes))]

    assert await with_database(url, archived_user_ids) == [1, 3]

    # The previous release deletes user 3 without touching the archives: the restore skips
    # the note of a user who is gone (its foreign key would point nowhere).
    await with_database(url, delete_user_3)
    await upgrade(url, "head", root)

    def notes(connection: Connection) -> list[tuple[int, str]]:
        rows = connection.execute(text("SELECT user_id, body FROM user_note ORDER BY id"))
        return [(int(u), b) for u, b in rows]

    assert await with_database(url, notes) == [(1, "one")]
    assert not await with_database(url, archive_tables)


def age_archive(created_at: datetime, revision: str) -> Callable[[Connection], None]:
    """Make the live archive of `revision` look as if it was made at `created_at`."""

    def work(connection: Connection) -> None:
        connection.execute(
            text(
                "UPDATE migration_archives SET created_at = :at "
                "WHERE revision = :r AND ended_at IS NULL"
            ),
            {"at": created_at, "r": revision},
        )

    return work


async def test_expired_archives_are_purged_and_the_register_remembers(
    database_url_at_head: str,
) -> None:
    url = database_url_at_head
    await with_database(url, add_three_users)
    await downgrade(url, "0001")
    await downgrade(url, "base")
    now = datetime.now(UTC).replace(tzinfo=None)  # the register holds naive UTC times
    await with_database(url, age_archive(now - timedelta(days=31), "0002"))  # limit: 30 days

    listed = run_module(url, "app.migrate", "archive", "list").stdout
    for archived in ("0004_user_list", "0002_user_list", "0001_user_list"):
        assert f"migration_archive_{archived}  3 rows  created " in listed, listed

    refused = run_module(url, "app.migrate", "archive", "purge", "--expired")
    assert refused.returncode == 2
    purged = run_module(url, "app.migrate", "archive", "purge", "--expired", "--yes")
    assert purged.stdout.split() == ["dropped", "migration_archive_0002_user_list"]
    assert await with_database(url, archive_tables) == {
        "migration_archive_0004_user_list",
        "migration_archive_0001_user_list",
    }

    def register(connection: Connection) -> list[tuple[str, str | None]]:
        rows = connection.execute(text("SELECT archive, ended FROM migration_archives ORDER BY id"))
        return [(a, e) for a, e in rows]

    assert await with_database(url, register) == [
        ("migration_archive_0004_user_list", None),
        ("migration_archive_0002_user_list", "purged"),
        ("migration_archive_0001_user_list", None),
    ]

    # Two days old: kept under the default limit, expired under a one-day limit.
    await with_database(url, age_archive(now - timedelta(days=2), "0001"))
    kept = run_module(url, "app.migrate", "archive", "purge", "--expired", "--yes")
    assert "no archive to purge" in kept.stdout
    shorter = run_module(
        url, "app.migrate", "archive", "purge", "--expired", "--yes", archive_max_age_days="1"
    )
    assert "dropped migration_archive_0001_user_list" in shorter.stdout
