"""Round trips a write pays on MySQL/MariaDB: none wasted on returning its connection."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.models import User


async def rollbacks_sent(engine: AsyncEngine) -> int:
    """ROLLBACKs the pooled connection's server session has run so far (MariaDB counts them per
    session), read through the driver so that reading starts no transaction of SQLAlchemy's."""
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.cursor() as cursor:
            await cursor.execute("SHOW SESSION STATUS LIKE 'Com_rollback'")
            row = await cursor.fetchone()
    return int(row[1])


@pytest.fixture
def mysql_only(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no round trips: the pool reset is a call into the library")


@pytest.mark.usefixtures("mysql_only")
async def test_a_committed_write_returns_its_connection_without_a_rollback(
    settings: Settings,
) -> None:
    """A ROLLBACK after a COMMIT ends nothing and costs a round trip per write (a third of a
    registration's); the pool sends one only when a transaction is still open."""
    engine = create_engine(settings.model_copy(update={"db_pool_size": 1}))
    try:
        before = await rollbacks_sent(engine)  # one pooled connection: the same session
        async with create_sessionmaker(engine)() as session:
            session.add(User(username="rt1", username_key="rt1", password_hash="x"))
            await session.commit()
        assert await rollbacks_sent(engine) == before
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("mysql_only")
async def test_an_open_transaction_is_still_rolled_back_on_return(settings: Settings) -> None:
    """A connection handed back mid-transaction must not carry it (or its locks) to the next
    request, however it was left: here the driver's own transaction, behind SQLAlchemy's back."""
    engine = create_engine(settings.model_copy(update={"db_pool_size": 1}))
    try:
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.query(
                "INSERT INTO user_list (username, password_hash) VALUES ('rt2', 'x')"
            )
            assert driver.get_transaction_status()
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT COUNT(*) FROM user_list"))).scalar()
            assert count == 0, "the uncommitted insert was rolled back before reuse"
    finally:
        await engine.dispose()
