"""The write fence and capture on MySQL/MariaDB: bounded, never widened, never left behind.

(On SQLite a migration run is one exclusive transaction: it needs no fence, and the behaviour it
guarantees is tested on both backends in tests/reliability/test_writes_during_migrations.py.)
"""

import asyncio
import uuid

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import create_engine
from app.migrate.capture import copy_in_chunks
from app.migrate.fence import FenceError, held_fence, hold_writers_off, release_fence
from tests.support import alembic
from tests.support.alembic import on_database, run_alembic, start_alembic
from tests.support.backends import url_string


@pytest.fixture(autouse=True)
def mysql_only(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite runs a migration in one exclusive transaction: no fence")


def state(connection: Connection) -> tuple[object, set[str], set[str], tuple[object, ...]]:
    inspector = inspect(connection)
    version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    columns = {c["name"] for c in inspector.get_columns("user_list")}
    archives = {t for t in inspector.get_table_names() if t.startswith("migration_archive_")}
    last = connection.execute(
        text(
            "SELECT revision, direction, success, error FROM migration_journal "
            "ORDER BY id DESC LIMIT 1"
        )
    ).one()
    return version, columns, archives, tuple(last)


def capture_triggers(connection: Connection) -> list[str]:
    return list(
        connection.execute(
            text(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = DATABASE()"
            )
        ).scalars()
    )


@pytest.fixture
async def database_url_at_0002(empty_database_url: str) -> str:
    """At 0002, so that `downgrade -1` is 0002's own fenced downgrade of `email`."""
    await alembic.upgrade(empty_database_url, "0002")
    return empty_database_url


async def test_a_downgrade_behind_an_open_transaction_gives_up_cleanly(
    database_url_at_0002: str,
) -> None:
    url = database_url_at_0002
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as holder:
            blocker = (await holder.execute(text("SELECT CONNECTION_ID()"))).scalar()
            await holder.execute(text("SELECT COUNT(*) FROM user_list"))  # and stay open
            downgrade = await asyncio.to_thread(
                start_alembic,
                url,
                "downgrade",
                "-1",
                ddl_max_attempts="2",
                ddl_retry_backoff_s="0.2",
            )
            code = await asyncio.to_thread(downgrade.wait, 60)
            await holder.rollback()
        _out, err = downgrade.communicate()
    finally:
        await engine.dispose()
    assert code != 0
    # The first statement that needs the table's lock: the capture trigger (see `capture`).
    assert "gave up on `CREATE TRIGGER migcap_" in err
    assert f"Blocked by: connection {blocker} " in err
    assert "Nothing of this migration was applied" in err
    version, columns, archives, (revision, direction, success, error) = await asyncio.to_thread(
        on_database, url, state
    )
    assert (version, "email" in columns, archives) == ("0002", True, set())
    assert not await asyncio.to_thread(on_database, url, capture_triggers)
    assert (revision, direction, bool(success)) == ("0002", "downgrade", False)
    assert "DdlGaveUp" in str(error)


async def test_a_step_cannot_widen_its_fence(database_url_at_0002: str) -> None:
    """LOCK TABLES releases what a session holds first: widening would open a gap."""

    def widen(connection: Connection) -> None:
        connection.exec_driver_sql("CREATE TABLE fence_probe (id INT PRIMARY KEY)")
        connection.commit()
        hold_writers_off(connection, ["user_list"])
        fence = held_fence(connection)
        assert fence is not None and {"user_list", "alembic_version"} <= fence.write
        hold_writers_off(connection, ["user_list"])  # covered: nothing to do
        with pytest.raises(FenceError, match="already holds"):
            hold_writers_off(connection, ["fence_probe"])
        assert release_fence(connection) and held_fence(connection) is None
        connection.exec_driver_sql("DROP TABLE fence_probe")

    await asyncio.to_thread(on_database, database_url_at_0002, widen)


async def test_without_the_trigger_privilege_the_copy_runs_inside_the_fence(
    database_url_at_0002: str,
) -> None:
    url = make_url(database_url_at_0002)
    # exec_driver_sql formats with %: the host pattern "%" is written %%.
    user, password = f"svc_nt_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    database = url.database

    def grant(connection: Connection) -> None:
        connection.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
        connection.exec_driver_sql(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%%'")
        connection.exec_driver_sql(f"REVOKE TRIGGER ON `{database}`.* FROM '{user}'@'%%'")
        connection.execute(
            text("INSERT INTO user_list (username, password_hash, email) VALUES ('ann', 'h', :e)"),
            {"e": "ann@ex.io"},
        )

    await asyncio.to_thread(on_database, database_url_at_0002, grant)
    limited = url_string(url.set(username=user, password=password))
    try:
        downgraded = await asyncio.to_thread(run_alembic, limited, "downgrade", "-1")
        assert "cannot create triggers on user_list" in downgraded.stderr
        await asyncio.to_thread(run_alembic, limited, "upgrade", "head")

        def email(connection: Connection) -> object:
            return connection.execute(text("SELECT email FROM user_list")).scalar()

        assert await asyncio.to_thread(on_database, database_url_at_0002, email) == "ann@ex.io"
    finally:
        await asyncio.to_thread(
            on_database,
            database_url_at_0002,
            lambda c: c.exec_driver_sql(f"DROP USER '{user}'@'%%'"),
        )


async def test_the_chunked_copy_covers_sparse_keys_and_keeps_mirrored_rows(
    database_url_at_0002: str,
) -> None:
    def copy(connection: Connection) -> list[tuple[int, str]]:
        connection.exec_driver_sql("CREATE TABLE probe (id BIGINT PRIMARY KEY, v VARCHAR(9))")
        connection.exec_driver_sql("CREATE TABLE probe_copy (id BIGINT PRIMARY KEY, v VARCHAR(9))")
        for key in (1, 2, 7, 10**12, 10**15):
            connection.execute(text("INSERT INTO probe VALUES (:k, 'old')"), {"k": key})
        # What a capture trigger mirrored after a write the copy has not reached yet.
        connection.exec_driver_sql("INSERT INTO probe_copy VALUES (7, 'newer')")
        connection.commit()
        copy_in_chunks(connection, "probe", "probe_copy", ["id", "v"], "id", Settings(), 2)
        rows = connection.execute(text("SELECT id, v FROM probe_copy ORDER BY id"))
        copied = [(int(k), str(v)) for k, v in rows]
        connection.exec_driver_sql("DROP TABLE probe, probe_copy")
        return copied

    assert await asyncio.to_thread(on_database, database_url_at_0002, copy) == [
        (1, "old"),
        (2, "old"),
        (7, "newer"),
        (10**12, "old"),
        (10**15, "old"),
    ]
