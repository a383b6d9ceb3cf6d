"""Bounded lock waits: an upgrade behind an open transaction never stalls reads of the table."""

import asyncio
import time

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.db import create_engine
from app.migrate.ddl_guard import TableCopyRefused, guard_ddl
from tests.support import alembic
from tests.support.alembic import HEAD, on_database, start_alembic

HOLD_S = 12.0
READ_EVERY_S = 0.1
MAX_READ_WAIT_S = 3.0


async def begin_reading_transaction(connection: AsyncConnection, backend: str) -> None:
    """Open a transaction that has read user_list, and keep it open (as a slow request would)."""
    if backend == "sqlite":
        await connection.exec_driver_sql("BEGIN")  # pysqlite would not begin for a SELECT
    await connection.execute(text("SELECT COUNT(*) FROM user_list"))


async def read_by_id_until(connection: AsyncConnection, done: asyncio.Event) -> list[float]:
    """Query user_list by id every 100 ms, each in its own transaction; return the waits."""
    waits = []
    while not done.is_set():
        started = time.monotonic()
        await connection.execute(text("SELECT username FROM user_list WHERE id = 1"))
        waits.append(time.monotonic() - started)
        await connection.rollback()
        await asyncio.sleep(READ_EVERY_S)
    return waits


def state(connection: Connection) -> tuple[str | None, set[str]]:
    version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return version, {c["name"] for c in inspect(connection).get_columns("user_list")}


async def test_upgrade_behind_a_12s_transaction_never_stalls_reads(
    empty_database_url: str, backend: str
) -> None:
    url = empty_database_url
    await alembic.upgrade(url, "0001")
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as setup:
            await setup.execute(
                text("INSERT INTO user_list (id, username, password_hash) VALUES (1, 'ann', 'h')")
            )
            await setup.commit()
        async with engine.connect() as holder, engine.connect() as reader:
            await begin_reading_transaction(holder, backend)
            held_since = time.monotonic()
            upgrade = await asyncio.to_thread(start_alembic, url, "upgrade", "head")
            done = asyncio.Event()
            reads = asyncio.create_task(read_by_id_until(reader, done))
            await asyncio.sleep(HOLD_S - (time.monotonic() - held_since))
            await holder.rollback()
            code = await asyncio.to_thread(upgrade.wait, 120)
            done.set()
            waits = await reads
        _out, err = upgrade.communicate()
    finally:
        await engine.dispose()
    print(f"{backend}: {len(waits)} reads, longest wait {max(waits):.2f} s")
    assert code == 0, err
    assert max(waits) < MAX_READ_WAIT_S, f"a read waited {max(waits):.2f} s"
    assert len(waits) > HOLD_S / (READ_EVERY_S + MAX_READ_WAIT_S)
    assert await asyncio.to_thread(on_database, url, state) == (
        HEAD,
        {"id", "username", "password_hash", "email", "role", "username_key"},
    )


async def test_upgrade_gives_up_cleanly_and_names_the_blocker(
    empty_database_url: str, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite DDL never waits for readers (WAL): nothing to give up on")
    url = empty_database_url
    await alembic.upgrade(url, "0001")
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as holder:
            blocker = (await holder.execute(text("SELECT CONNECTION_ID()"))).scalar()
            await begin_reading_transaction(holder, backend)
            upgrade = await asyncio.to_thread(
                start_alembic,
                url,
                "upgrade",
                "head",
                ddl_max_attempts="2",
                ddl_retry_backoff_s="0.2",
            )
            code = await asyncio.to_thread(upgrade.wait, 60)
            await holder.rollback()
        _out, err = upgrade.communicate()
    finally:
        await engine.dispose()
    print(err.strip().splitlines()[-1])
    assert code != 0
    assert "gave up on `ALTER TABLE user_list ADD COLUMN email" in err
    assert f"Blocked by: connection {blocker} " in err
    assert "schema and alembic_version are unchanged" in err

    def outcome(connection: Connection) -> tuple[tuple[str | None, set[str]], tuple[object, ...]]:
        last = connection.execute(
            text(
                "SELECT revision, direction, success, error FROM migration_journal "
                "ORDER BY id DESC LIMIT 1"
            )
        ).one()
        return state(connection), tuple(last)

    (version, columns), (revision, direction, success, error) = await asyncio.to_thread(
        on_database, url, outcome
    )
    assert (version, columns) == ("0001", {"id", "username", "password_hash"})
    assert (revision, direction, bool(success)) == ("0002", "upgrade", False)
    assert "DdlGaveUp" in str(error)


async def test_alter_that_would_copy_the_table_is_refused_unless_allowed(
    database_url_at_head: str, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("ALGORITHM applies to MySQL/MariaDB only")

    def alter(connection: Connection) -> None:
        connection.exec_driver_sql("CREATE TABLE copy_probe (id INT PRIMARY KEY, v INT)")
        with guard_ddl(connection, Settings()), pytest.raises(TableCopyRefused):
            connection.exec_driver_sql("ALTER TABLE copy_probe MODIFY v BIGINT")
        with guard_ddl(connection, Settings(migration_allow_table_copy=True)):
            connection.exec_driver_sql("ALTER TABLE copy_probe MODIFY v BIGINT")
        connection.exec_driver_sql("DROP TABLE copy_probe")

    await asyncio.to_thread(on_database, database_url_at_head, alter)
