"""Primary-key reads on the driver's cursor (app/point_reads.py) answer what Core would, fail as
SQLAlchemy's errors do, and never hand a connection broken mid-query back to the pool."""

import asyncio

import pytest
from sqlalchemy import bindparam, func, insert, literal_column, select, table, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine, database_url
from app.models import User
from app.point_reads import PointRead
from tests.support.net import free_port

BY_ID = PointRead(select(User.id, User.username, User.email).where(User.id == bindparam("user_id")))


@pytest.fixture
def mysql_only(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("MariaDB error numbers and SLEEP(); SQLite: test_sqlite_reads.py")


async def test_point_read_answers_what_core_does(db: AsyncEngine) -> None:
    users = [("pr1", "a@ex.io"), ("pr2", None)]
    async with db.begin() as connection:
        await connection.execute(
            insert(User),
            [
                {"username": name, "username_key": name, "password_hash": "x", "email": email}
                for name, email in users
            ],
        )
    async with db.connect() as connection:
        ids = (await connection.execute(select(User.id).order_by(User.id))).scalars().all()
        rows = [await BY_ID.first(connection, user_id=user_id) for user_id in ids]
        missing = await BY_ID.first(connection, user_id=max(ids) + 1)
    assert rows == [(ids[0], "pr1", "a@ex.io"), (ids[1], "pr2", None)]
    assert missing is None


@pytest.mark.usefixtures("mysql_only")
async def test_a_driver_error_is_sqlalchemys_and_keeps_the_connection(db: AsyncEngine) -> None:
    """The 503 handler and the write-conflict retry look for DBAPIError and its `orig`."""
    broken = PointRead(select(literal_column("x")).select_from(table("no_such_table")))
    async with db.connect() as connection:
        with pytest.raises(DBAPIError) as caught:
            await broken.first(connection)
        assert caught.value.orig.args[0] == 1146  # type: ignore[union-attr]
        assert "no_such_table" in str(caught.value)
        assert not connection.invalidated  # a statement error, not a broken link
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1


@pytest.mark.usefixtures("mysql_only")
async def test_a_read_cancelled_mid_query_invalidates_its_connection(db: AsyncEngine) -> None:
    """A deadline cancels the request while the server's answer is still on its way: that
    connection must not serve the next query (it would read the old answer)."""
    slow = PointRead(select(func.sleep(bindparam("seconds"))))
    async with db.connect() as connection:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await slow.first(connection, seconds=2)
        assert connection.invalidated
    async with db.connect() as connection:  # the pool opens a fresh one
        assert await slow.first(connection, seconds=0) == (0,)


def checked_out(engine: AsyncEngine) -> int:
    return int(engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_a_point_read_on_an_engine_checks_a_connection_out_and_back(
    db: AsyncEngine,
) -> None:
    """The hot read's form: a connection of its own straight from the pool, returned after,
    whether the read found a row, found none, or failed."""
    async with db.begin() as connection:
        await connection.execute(
            insert(User), {"username": "pe1", "username_key": "pe1", "password_hash": "x"}
        )
        user_id = (await connection.execute(select(func.max(User.id)))).scalar_one()
    assert await BY_ID.first(db, user_id=user_id) == (user_id, "pe1", None)
    assert await BY_ID.first(db, user_id=user_id + 1) is None
    broken = PointRead(select(literal_column("x")).select_from(table("no_such_table")))
    with pytest.raises(DBAPIError):
        await broken.first(db)
    assert checked_out(db) == 0


@pytest.mark.usefixtures("mysql_only")
async def test_a_read_cancelled_on_an_engine_discards_its_connection(db: AsyncEngine) -> None:
    slow = PointRead(select(func.sleep(bindparam("seconds"))))
    assert await slow.first(db, seconds=0) == (0,)  # one connection in the pool now
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await slow.first(db, seconds=2)
    assert checked_out(db) == 0
    async with db.connect() as connection:  # the pooled one was closed, not returned in use
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    assert await slow.first(db, seconds=0) == (0,)


@pytest.mark.usefixtures("mysql_only")
async def test_a_database_that_refuses_connections_is_a_dbapi_error(
    settings: Settings,
) -> None:
    """A checkout that cannot connect fails as SQLAlchemy's OperationalError (the 503
    handler's), not as the driver's own exception (a 500)."""
    url = database_url(settings.database_url).set(host="127.0.0.1", port=free_port())
    engine = create_engine(settings.model_copy(update={"db_connect_timeout_s": 2}), url)
    try:
        with pytest.raises(OperationalError):
            await BY_ID.first(engine, user_id=1)
    finally:
        await engine.dispose()
