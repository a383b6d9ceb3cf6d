"""Many replicas, one migration: concurrent upgrades serialize on the migration lock."""

import asyncio

import pytest
from sqlalchemy import Connection, text

from app.migrate.lock import LOCK_PREFIX, MigrationLockError, migration_lock
from tests.support.alembic import on_database, start_alembic


def read_outcome(connection: Connection) -> tuple[list[str], list[tuple[str, str, bool]]]:
    versions = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    journal = [
        (r.revision, r.direction, bool(r.success))
        for r in connection.execute(
            text("SELECT revision, direction, success FROM migration_journal ORDER BY id")
        )
    ]
    return versions, journal


def test_five_concurrent_upgrades_apply_each_revision_once(migration_url: str) -> None:
    processes = [start_alembic(migration_url, "upgrade", "head") for _ in range(5)]
    results = [(p.wait(timeout=180), *p.communicate()) for p in processes]
    for code, _out, err in results:
        assert code == 0, err
    versions, journal = on_database(migration_url, read_outcome)
    assert versions == ["0004"]
    assert journal == [(r, "upgrade", True) for r in ("0001", "0002", "0003", "0004")]
    ran = sum(err.count("Running upgrade") for _code, _out, err in results)
    assert ran == 4, "each revision ran in exactly one process"


def test_lock_wait_is_bounded_and_names_the_holder(migration_url: str, backend: str) -> None:
    def hold_and_try(holder: Connection) -> str:
        if backend == "sqlite":
            holder.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            database = holder.exec_driver_sql("SELECT DATABASE()").scalar()
            holder.execute(text("SELECT GET_LOCK(:n, 1)"), {"n": f"{LOCK_PREFIX}{database}"})
        other = holder.engine.connect()
        try:
            with (
                pytest.raises(MigrationLockError) as refused,
                migration_lock(other, timeout_s=0.5, sqlite_busy_timeout_ms=100),
            ):
                pass
        finally:
            other.close()
            holder.rollback()
        return str(refused.value)

    message = on_database(migration_url, hold_and_try)
    if backend != "sqlite":
        assert "another migration (connection " in message
    else:
        assert "held the SQLite database" in message


async def test_lock_is_released_after_a_run(database_url_at_head: str, backend: str) -> None:
    # A second upgrade right after the first does not wait for anything: the lock was freed.
    process = await asyncio.to_thread(start_alembic, database_url_at_head, "upgrade", "head")
    code = await asyncio.to_thread(process.wait, 60)
    assert code == 0, process.communicate()[1]
