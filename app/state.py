"""What the lifespan builds and owns for the life of the app: engines, pools, the hashers,
the login throttle's store."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.clock import Clock, utc_now
from app.config import Settings
from app.db import create_engine, create_read_pool, create_sessionmaker, database_url
from app.db_pool import ReadPool
from app.hashing import HashingPool
from app.limits import RateLimiter
from app.login_throttle import ThrottleStore, throttle_store


@dataclass
class AppState:
    """The app's runtime objects; routes reach them through `app.deps`, never directly."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # The read-only routes' own pool (app.db.create_read_pool); None for in-memory SQLite.
    read_pool: ReadPool | None
    hasher: HashingPool
    throttle: ThrottleStore
    settings: Settings
    # What sessions and the database throttle take as now (tests move it).
    clock: Clock
    # Rate-limit allowances (in memory, or shared through Redis): app.limits.
    limiter: RateLimiter

    @classmethod
    def build(cls, settings: Settings, clock: Clock = utc_now) -> "AppState":
        url = database_url(settings.database_url)
        engine = create_engine(settings, url)

        def now() -> datetime:
            return state.clock()  # late-bound, so a test that moves state.clock moves all

        state = cls(
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            read_pool=create_read_pool(settings, url),
            hasher=HashingPool.from_settings(settings),
            throttle=throttle_store(settings, engine, now),
            settings=settings,
            clock=clock,
            limiter=RateLimiter.from_settings(settings),
        )
        return state

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for a read-only route: Core, no Session, no COMMIT.

        On MySQL/MariaDB it comes from the autocommit read pool: a primary-key read is one
        round trip. On SQLite from the query_only read pool: one hand-off to the connection's
        thread, and none for the ROLLBACK on return (no transaction is open after a SELECT).
        """
        source = self.read_pool or self.engine
        async with source.connect() as connection:
            yield connection

    @asynccontextmanager
    async def read_source(self) -> AsyncIterator[AsyncConnection | AsyncEngine]:
        """What a point read (app/point_reads.py) runs on: the read pool's engine once its
        gate admits the request, or the main engine where there is no read pool."""
        if self.read_pool is None:
            yield self.engine
            return
        async with self.read_pool.admitted() as engine:
            yield engine

    async def close(self) -> None:
        self.hasher.close()
        await self.throttle.close()
        if self.read_pool is not None:
            await self.read_pool.dispose()
        await self.engine.dispose()
