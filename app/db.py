"""Database plumbing: the declarative base, the engine factory and the session dependency."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool

from app.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_mysql(url: URL) -> bool:
    return url.get_backend_name() in ("mysql", "mariadb")


def database_url(raw: str) -> URL:
    """Parse the configured URL; MySQL/MariaDB get utf8mb4 unless the URL names a charset."""
    url = make_url(raw)
    if is_mysql(url) and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def redact(url: URL) -> str:
    """The URL as it may appear in a log line or error: never with its password."""
    return url.render_as_string(hide_password=True)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; busy_timeout makes writers queue for the
    # lock instead of failing at once with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _bounded_aiomysql_connect(timeout_s: float) -> Callable[..., Awaitable[Any]]:
    """aiomysql.connect, with `timeout_s` bounding the handshake as well as the TCP connect.

    aiomysql's own connect_timeout stops at the TCP connect: a server (or proxy) that accepts
    but never answers would hold the pool checkout, and its request, forever.
    """
    import aiomysql

    async def connect(*args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                return await aiomysql.connect(*args, **kwargs)
        except TimeoutError:
            # As a driver error, so that SQLAlchemy wraps it and the client gets a 503.
            raise aiomysql.OperationalError(2013, "handshake timed out") from None

    return connect


def engine_options(url: URL, settings: Settings, *, pooled: bool = True) -> dict[str, Any]:
    """Driver and pool options that bound every wait on the database."""
    # Statement parameters (password hashes among them) stay out of logs and error messages.
    options: dict[str, Any] = {"hide_parameters": True}
    if is_sqlite(url):
        options["connect_args"] = {"timeout": settings.sqlite_busy_timeout_ms / 1000}
    elif is_mysql(url):
        options["connect_args"] = {"connect_timeout": settings.db_connect_timeout_s}
        if url.get_driver_name() == "aiomysql":
            options["connect_args"]["async_creator_fn"] = _bounded_aiomysql_connect(
                settings.db_connect_timeout_s
            )
    if not pooled:
        options["poolclass"] = NullPool
    elif not is_sqlite(url):
        options.update(
            # No pre-ping on every checkout (a round trip per request): `_ping_idle_connections`
            # pings only connections that sat idle, and LIFO keeps the busy ones in use.
            pool_use_lifo=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            pool_recycle=settings.db_pool_recycle_s,
        )
    return options


def create_engine(
    settings: Settings, url: URL | None = None, *, pooled: bool = True
) -> AsyncEngine:
    """An async engine for the configured database (or `url`), with SQLite tuned for concurrency.

    `pooled=False` is for one-shot work such as migrations: every connection is closed on release.
    """
    url = url or database_url(settings.database_url)
    engine = create_async_engine(url, **engine_options(url, settings, pooled=pooled))
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    elif pooled:
        _ping_idle_connections(engine)
        if is_mysql(url):
            _attach_read_engine(engine, url, settings)
    return engine


class _ReadPool:
    """The autocommit read engine, and a first-come-first-served gate in front of its pool.

    When more requests want a connection than the pool holds, SQLAlchemy's asyncio queue hands
    a returned connection to whichever request asks first, not to the one that has waited
    longest: under a c=256 load a few waiters starved past the pool timeout (503s). The gate
    (asyncio.Semaphore is FIFO) admits as many requests as the pool has connections, in
    arrival order, and keeps the pool timeout's bound on how long one may wait.
    """

    def __init__(self, engine: AsyncEngine, limit: int, timeout_s: float) -> None:
        self.engine = engine
        self.limit = limit
        self.timeout_s = timeout_s
        self._gate: asyncio.Semaphore | None = None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        if self._gate is None:  # made on first use, so it belongs to the running loop
            self._gate = asyncio.Semaphore(self.limit)
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._gate.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"no pooled read connection within {self.timeout_s:g} s"
            ) from None
        try:
            async with self.engine.connect() as connection:
                yield connection
        finally:
            self._gate.release()


# Pooled MySQL/MariaDB engines get a second pool whose connections stay in autocommit, for
# the read-only routes (see read_connection); keyed by the main engine and disposed with it.
_READ_POOLS: "WeakKeyDictionary[Engine, _ReadPool]" = WeakKeyDictionary()


def _attach_read_engine(engine: AsyncEngine, url: URL, settings: Settings) -> None:
    """An autocommit pool beside `engine`: a read is one round trip, the SELECT.

    In autocommit the read needs no COMMIT or ROLLBACK after it, and `skip_autocommit_rollback`
    lets SQLAlchemy (which asks the driver, per connection, whether it is in autocommit) skip
    the DBAPI rollback on close and on return to the pool. A separate pool, not a per-checkout
    switch of the isolation level, because switching costs two round trips and runs outside
    SQLAlchemy's error translation. Sessions, and so every write, stay on `engine`.
    """
    try:
        reads = create_async_engine(
            url,
            isolation_level="AUTOCOMMIT",
            skip_autocommit_rollback=True,  # SQLAlchemy >= 2.0.43
            **engine_options(url, settings),
        )
    except TypeError:  # an older SQLAlchemy: reads share the main pool, two round trips
        return
    _ping_idle_connections(reads)
    limit = settings.db_pool_size + max(settings.db_max_overflow, 0)
    _READ_POOLS[engine.sync_engine] = _ReadPool(reads, limit, settings.db_pool_timeout_s)

    def dispose_reads(_engine: Engine) -> None:
        # Runs inside AsyncEngine.dispose()'s greenlet, where the async driver can be awaited.
        reads.sync_engine.dispose()

    event.listen(engine.sync_engine, "engine_disposed", dispose_reads)


# A connection back in use within this many seconds is taken as alive; older ones are pinged.
IDLE_PING_AFTER_S = 1.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Pre-ping only the connections that sat idle, where a dropped link hides.

    SQLAlchemy's `pool_pre_ping` costs a round trip on every checkout, one more than a read
    needs. A connection used within the last second is all but surely alive, and if the
    database went away meanwhile the query fails, the pool is invalidated and the request
    gets the usual 503; a connection idle for longer (the server's wait_timeout, a restart
    while quiet) is pinged and, if dead, replaced before the request sees it.
    """
    dialect = engine.sync_engine.dialect

    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_AFTER_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError("idle connection failed its ping") from exc

    event.listen(engine.sync_engine, "checkin", on_checkin)
    event.listen(engine.sync_engine, "checkout", on_checkout)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A request-scoped session: committed when the route succeeds, rolled back when it raises."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except Exception:
            await session.rollback()
            raise


# scope="function": the commit runs before the response is sent, so a 2xx means it is durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@asynccontextmanager
async def read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for a read-only route: Core, no Session, no COMMIT.

    On MySQL/MariaDB it comes from the autocommit read pool: a primary-key read is one round
    trip. Elsewhere (SQLite, or an engine made without one) closing it ends the implicit
    transaction with one ROLLBACK, after which the pool skips its own reset.
    """
    engine: AsyncEngine = request.app.state.engine
    reads = _READ_POOLS.get(engine.sync_engine)
    async with (reads or engine).connect() as connection:
        yield connection
