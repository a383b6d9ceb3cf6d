"""Database plumbing: the declarative base, the engine factory and the session dependency."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, make_url
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
from app.db_pool import (
    attach_read_pool,
    bounded_aiomysql_connect,
    ping_idle_connections,
    read_pool_for,
)

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


def engine_options(url: URL, settings: Settings, *, pooled: bool = True) -> dict[str, Any]:
    """Driver and pool options that bound every wait on the database."""
    # Statement parameters (password hashes among them) stay out of logs and error messages.
    options: dict[str, Any] = {"hide_parameters": True}
    if is_sqlite(url):
        options["connect_args"] = {"timeout": settings.sqlite_busy_timeout_ms / 1000}
    elif is_mysql(url):
        options["connect_args"] = {"connect_timeout": settings.db_connect_timeout_s}
        if url.get_driver_name() == "aiomysql":
            options["connect_args"]["async_creator_fn"] = bounded_aiomysql_connect(
                settings.db_connect_timeout_s
            )
    if not pooled:
        options["poolclass"] = NullPool
    elif not is_sqlite(url):
        options.update(
            # No pre-ping on every checkout (a round trip per request): `ping_idle_connections`
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
        ping_idle_connections(engine)
        if is_mysql(url):
            attach_read_pool(
                engine,
                url,
                engine_options(url, settings),
                limit=settings.db_pool_size + max(settings.db_max_overflow, 0),
                timeout_s=settings.db_pool_timeout_s,
            )
    return engine


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
    reads = read_pool_for(engine)
    async with (reads or engine).connect() as connection:
        yield connection
