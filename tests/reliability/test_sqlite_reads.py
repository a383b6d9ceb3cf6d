"""SQLite under concurrent reads: a pool of fixed size that is not churned, reads on query_only
connections of their own, one hand-off to a connection's thread per statement."""

import asyncio
from collections.abc import AsyncIterator
from queue import SimpleQueue
from typing import Any

import pytest
from sqlalchemy import event, insert, literal_column, select, table, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import crud
from app.config import Settings
from app.models import User
from app.point_reads import PointRead
from app.state import AppState


@pytest.fixture
def backend() -> str:
    """SQLite only: its connection threads and pools (MariaDB's are in test_round_trips)."""
    return "sqlite"


@pytest.fixture
async def state(settings: Settings) -> AsyncIterator[AppState]:
    built = AppState.build(settings.model_copy(update={"db_pool_size": 4, "db_max_overflow": 0}))
    yield built
    await built.close()


class CountingQueue:
    """Stands in for an aiosqlite connection's queue to its thread, counting what is sent."""

    def __init__(self, queue: "SimpleQueue[Any]") -> None:
        self.queue = queue
        self.sent = 0

    def put_nowait(self, item: Any) -> None:
        self.sent += 1
        self.queue.put_nowait(item)


async def count_hand_offs(connection: AsyncConnection) -> CountingQueue:
    driver = (await connection.get_raw_connection()).driver_connection
    counter = CountingQueue(driver._tx)  # type: ignore[union-attr]
    driver._tx = counter  # type: ignore[union-attr]  # the thread keeps the queue itself
    return counter


async def add_user(engine: AsyncEngine, username: str) -> int:
    async with engine.begin() as connection:
        result = await connection.execute(
            insert(User).values(username=username, username_key=username, password_hash="x")
        )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def test_a_read_is_one_hand_off_to_the_connection_thread(state: AppState) -> None:
    """aiosqlite sends each cursor call to the connection's thread: open, execute, fetch,
    close, and the pool's ROLLBACK on return were five; the read is one."""
    user_id = await add_user(state.engine, "handoff")
    async with state.read_connection() as connection:
        counter = await count_hand_offs(connection)
        _, username, _ = await crud.read_public_user(connection, user_id=user_id)
    assert username == "handoff"
    assert counter.sent == 1


async def test_a_write_is_one_hand_off_per_statement_and_one_to_commit(state: AppState) -> None:
    async with state.sessionmaker() as session:
        counter = await count_hand_offs(await session.connection())
        await crud.create_user(session, username="w1", password_hash="x", email=None)
        await session.commit()
    assert counter.sent == 2  # INSERT (sqlite3 opens the transaction itself), COMMIT
    async with state.read_connection() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM user_list"))).scalar() == 1


async def test_concurrent_reads_use_the_configured_pool_without_reconnecting(
    state: AppState,
) -> None:
    """SQLAlchemy's default SQLite pool (5 + 10 overflow) closed overflow connections as they
    came back and opened new ones for the next readers: a thread and a file open each."""
    user_id = await add_user(state.engine, "many")
    reads = state.read_pool.engine if state.read_pool is not None else state.engine
    connects: list[object] = []
    event.listen(reads.sync_engine, "connect", lambda *_: connects.append(1))

    async def read() -> str:
        async with state.read_connection() as connection:
            _, username, _ = await crud.read_public_user(connection, user_id=user_id)
            await asyncio.sleep(0)  # hold the connection across a turn of the loop
            return username

    for _ in range(3):
        assert await asyncio.gather(*(read() for _ in range(64))) == ["many"] * 64
    assert len(connects) <= 4
    assert reads.sync_engine.pool.size() == 4  # type: ignore[attr-defined]
    assert state.engine.sync_engine.pool.size() == 4  # type: ignore[attr-defined]


async def test_reads_never_wait_for_the_pool_past_its_timeout(settings: Settings) -> None:
    """Many more readers than connections are served in arrival order, within the timeout."""
    state = AppState.build(settings.model_copy(update={"db_pool_size": 2, "db_pool_timeout_s": 5}))
    try:
        user_id = await add_user(state.engine, "queue")

        async def read() -> str:
            async with state.read_connection() as connection:
                _, username, _ = await crud.read_public_user(connection, user_id=user_id)
                return username

        assert await asyncio.gather(*(read() for _ in range(300))) == ["queue"] * 300
    finally:
        await state.close()


async def test_read_connections_refuse_to_write(state: AppState) -> None:
    async with state.read_connection() as connection:
        with pytest.raises(OperationalError, match="readonly"):
            await connection.execute(
                text(
                    "INSERT INTO user_list (username, username_key, password_hash) "
                    "VALUES ('ro', 'ro', 'x')"
                )
            )
    async with state.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM user_list"))).scalar() == 0


async def test_reads_answer_while_a_writer_holds_the_write_lock(state: AppState) -> None:
    """WAL: a reader does not queue behind a writer's open transaction (busy_timeout is for
    writers), and sees what was committed before it."""
    user_id = await add_user(state.engine, "before")
    async with state.engine.connect() as writer:
        await writer.exec_driver_sql("BEGIN IMMEDIATE")
        await writer.exec_driver_sql("UPDATE user_list SET email = 'w@x.io'")
        async with asyncio.timeout(1), state.read_connection() as connection:
            _, _, email = await crud.read_public_user(connection, user_id=user_id)
        assert email is None
        await writer.rollback()


async def test_a_point_read_error_is_sqlalchemys_and_keeps_the_connection(
    state: AppState,
) -> None:
    """On the driver's cursor (app/point_reads.py) a SQLite error still reaches the 503 handler
    as SQLAlchemy's DBAPIError, and a statement error leaves the connection usable."""
    broken = PointRead(select(literal_column("x")).select_from(table("no_such_table")))
    async with state.read_connection() as connection:
        counter = await count_hand_offs(connection)
        with pytest.raises(DBAPIError, match="no such table"):
            await broken.first(connection)
        assert not connection.invalidated
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    assert counter.sent == 2  # one statement each: nothing opens, fetches or closes apart


async def test_a_point_read_skips_sqlalchemys_statement_machinery(state: AppState) -> None:
    """GET /show/{id} on SQLite runs on aiosqlite's cursor, as on MariaDB (app/point_reads.py):
    no execution context, result metadata or Row objects for a one-row read."""
    user_id = await add_user(state.engine, "direct")
    assert state.read_pool is not None
    statements: list[str] = []
    event.listen(
        state.read_pool.engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_: statements.append(sql),
    )
    async with state.read_connection() as connection:
        assert await crud.read_public_user(connection, user_id=user_id) == (
            user_id,
            "direct",
            None,
        )
    assert statements == []
