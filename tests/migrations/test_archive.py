"""Lossless downgrades: what a downgrade drops is archived, and the upgrade puts it back."""

from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text

from app.config import Settings
from tests.support import alembic
from tests.support.alembic import (
    HEAD,
    copy_project,
    run_alembic,
    run_module,
    start_alembic,
    upgrade,
    with_database,
)
from tests.support.auth import log_in, register
from tests.support.serving import serve

EMAILS = ["a@b.cd", "法外狂徒@张小三.cn", "😀@x.io", "MiXeD@Ca.IO", "sp@ace.io ", None]
ARCHIVE_0002 = "migration_archive_0002_user_list"
ARCHIVE_0004 = "migration_archive_0004_user_list"


def add_users(connection: Connection) -> None:
    for number, email in enumerate(EMAILS, start=1):
        connection.execute(
            text("INSERT INTO user_list (username, password_hash, email) VALUES (:u, :h, :e)"),
            {"u": f"user{number}", "h": f"$argon2id$hash{number}", "e": email},
        )


def add_and_list_users(connection: Connection) -> list[tuple[object, ...]]:
    add_users(connection)
    return users(connection)


def users(connection: Connection) -> list[tuple[object, ...]]:
    query = "SELECT id, username, password_hash, email, HEX(email) FROM user_list ORDER BY id"
    return [tuple(r) for r in connection.execute(text(query))]


def version(connection: Connection) -> str | None:
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def last_journal_entry(connection: Connection) -> tuple[str, str, bool, str]:
    row = connection.execute(
        text("SELECT revision, direction, success, error FROM migration_journal ORDER BY id DESC")
    ).first()
    assert row is not None
    return row[0], row[1], bool(row[2]), str(row[3])


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_downgrade_then_upgrade_brings_every_email_back_byte_identical(
    database_url_at_head: str,
) -> None:
    url = database_url_at_head
    before = await with_database(url, add_and_list_users)
    assert [row[3] for row in before] == EMAILS

    run_alembic(url, "downgrade", "0001")  # through every later revision to 0002's downgrade
    assert ARCHIVE_0002 in await with_database(url, tables)
    run_alembic(url, "upgrade", "head")

    assert await with_database(url, users) == before
    assert ARCHIVE_0002 not in await with_database(url, tables), "a restored archive is dropped"


async def test_downgrade_then_upgrade_keeps_the_admins(database_url_at_head: str) -> None:
    url = database_url_at_head

    def add_admin_and_list_roles(connection: Connection) -> list[tuple[object, ...]]:
        add_users(connection)
        connection.execute(text("UPDATE user_list SET role = 'admin' WHERE username = 'user2'"))
        return roles(connection)

    def roles(connection: Connection) -> list[tuple[object, ...]]:
        query = "SELECT id, username, role FROM user_list ORDER BY id"
        return [tuple(r) for r in connection.execute(text(query))]

    before = await with_database(url, add_admin_and_list_roles)
    assert [r[2] for r in before] == ["user", "admin", "user", "user", "user", "user"]
    run_alembic(url, "downgrade", "0003")  # 0004's downgrade drops the role column
    assert ARCHIVE_0004 in await with_database(url, tables)
    run_alembic(url, "upgrade", "head")
    assert await with_database(url, roles) == before
    assert ARCHIVE_0004 not in await with_database(url, tables)


async def test_restore_never_gives_an_archived_email_to_a_newer_user(
    database_url_at_head: str,
) -> None:
    """While at 0001 the newest user is deleted and a new one registers: ids are never reused,
    so the upgrade cannot hand the deleted user's archived email to the newcomer."""
    url = database_url_at_head

    def add_old_user(connection: Connection) -> None:
        connection.execute(
            text(
                "INSERT INTO user_list (username, password_hash, email)"
                " VALUES ('old', 'h', 'old@ex.io')"
            )
        )

    def replace_old_user(connection: Connection) -> None:
        connection.execute(text("DELETE FROM user_list WHERE username = 'old'"))
        connection.execute(
            text("INSERT INTO user_list (username, password_hash) VALUES ('newcomer', 'h')")
        )

    def newcomer_email(connection: Connection) -> object:
        query = "SELECT email FROM user_list WHERE username = 'newcomer'"
        return connection.execute(text(query)).scalar()

    await with_database(url, add_old_user)
    await alembic.downgrade(url, "0001")
    await with_database(url, replace_old_user)
    await alembic.upgrade(url, "head")
    assert await with_database(url, newcomer_email) is None


async def test_downgrade_to_base_keeps_the_users_for_the_next_upgrade(
    database_url_at_head: str,
) -> None:
    url = database_url_at_head
    before = await with_database(url, add_and_list_users)
    await alembic.downgrade(url, "base")
    assert "user_list" not in await with_database(url, tables)
    await alembic.upgrade(url, "head")
    assert await with_database(url, users) == before
    assert not {t for t in await with_database(url, tables) if t.startswith("migration_archive_")}


async def test_archives_are_purged_only_when_confirmed(database_url_at_head: str) -> None:
    url = database_url_at_head
    await with_database(url, add_users)
    await alembic.downgrade(url, "0001")

    listed = run_module(url, "app.migrate", "archive", "list")
    assert f"{ARCHIVE_0002}  {len(EMAILS)} rows" in listed.stdout
    refused = run_module(url, "app.migrate", "archive", "purge")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert ARCHIVE_0002 in await with_database(url, tables)

    purged = run_module(url, "app.migrate", "archive", "purge", "--revision", "0002", "--yes")
    assert purged.returncode == 0 and f"dropped {ARCHIVE_0002}" in purged.stdout
    await alembic.upgrade(url, "head")
    assert [row[3] for row in await with_database(url, users)] == [None] * len(EMAILS)


IRREVERSIBLE = f'''"""merge usernames: cannot be undone without loss

Revision ID: 0099
Revises: {HEAD}
"""

from alembic import op

from app.migrate.archive import refuse_data_loss

revision = "0099"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE user_list SET email = NULL WHERE email = ''")


def downgrade() -> None:
    refuse_data_loss(revision, "emptied emails cannot be told apart from missing ones")
'''


@pytest.fixture
def project_with_irreversible_step(tmp_path: Path) -> Path:
    """A copy of the project with a 0099 whose downgrade would lose data."""
    copy_project(tmp_path)
    (tmp_path / "alembic" / "versions" / "0099_merge_usernames.py").write_text(IRREVERSIBLE)
    return tmp_path


async def test_irreversible_downgrade_refuses_loudly_unless_allowed(
    empty_database_url: str, project_with_irreversible_step: Path
) -> None:
    url, root = empty_database_url, project_with_irreversible_step
    await upgrade(url, "head", root)

    refused = run_alembic(url, "downgrade", "-1", cwd=root, check=False)
    assert refused.returncode != 0
    assert "migration 0099 cannot be reversed without losing data" in refused.stderr
    assert "MIGRATION_ALLOW_DATA_LOSS=1" in refused.stderr
    assert await with_database(url, version) == "0099"
    failed = await with_database(url, last_journal_entry)
    assert failed[:3] == ("0099", "downgrade", False) and "IrreversibleMigration" in failed[3]

    allowed = start_alembic(url, "downgrade", "-1", cwd=root, migration_allow_data_loss="1")
    assert allowed.wait(timeout=120) == 0, allowed.communicate()[1]
    assert await with_database(url, version) == HEAD


async def test_a_downgrade_below_0003_revokes_every_session_and_says_so(
    database_url_at_head: str,
) -> None:
    """Deliberate and stated (0003's docstring, docs/migrations.md): sessions are not archived."""
    settings = Settings(database_url=database_url_at_head)
    async with serve(settings) as client:
        account = await register(client, "stayer")
    downgraded = run_alembic(database_url_at_head, "downgrade", "0002")
    assert "dropping user_session revokes every session" in downgraded.stderr
    assert not {"user_session", "login_throttle"} & await with_database(
        database_url_at_head, tables
    )
    run_alembic(database_url_at_head, "upgrade", "head")
    async with serve(settings) as client:
        assert (await client.get("/users/me", headers=account.headers)).status_code == 401
        await log_in(client, "stayer")  # the account itself is untouched
