"""The engine factory: the configured URL, the driver and pool options, SQLite's pragmas."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from app.backend import is_in_memory_sqlite, is_mysql, is_sqlite
from app.config import Settings
from app.db_nodes import Node, NodeOrder, parse_node
from app.db_pool import (
    CountingQueuePool,
    ReadPool,
    bounded_aiomysql_connect,
    ping_idle_connections,
    recycle_failover_connections,
    rollback_only_open_transactions,
)
from app.db_sqlite import prefetch_connect


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


def _set_sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    # The read pool's connections refuse to write: a write that took one by mistake fails
    # loudly instead of committing outside the request's session.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def database_nodes(url: URL, settings: Settings, *, rotate: bool) -> NodeOrder | None:
    """The URL's host then DATABASE_FAILOVER_HOSTS, or None when there is only the one."""
    if not settings.database_failover_hosts:
        return None
    first = Node(url.host or "localhost", url.port or 3306)
    others = [parse_node(entry) for entry in settings.database_failover_hosts]
    return NodeOrder([first, *(node for node in others if node != first)], rotate=rotate)


def engine_options(
    url: URL, settings: Settings, *, pooled: bool = True, rotate: bool = False
) -> dict[str, Any]:
    """Driver and pool options that bound every wait on the database.

    `rotate`: spread new connections over the failover nodes (reads) instead of preferring
    the first one that answers (writes).
    """
    # Statement parameters (password hashes among them) stay out of logs and error messages.
    options: dict[str, Any] = {"hide_parameters": True}
    if is_sqlite(url):
        options["connect_args"] = {"timeout": settings.sqlite_busy_timeout_ms / 1000}
        if url.get_driver_name() == "aiosqlite":
            # One thread hand-off per statement instead of five (app/db_sqlite.py).
            options["connect_args"]["async_creator_fn"] = prefetch_connect
    elif is_mysql(url):
        options["connect_args"] = {"connect_timeout": settings.db_connect_timeout_s}
        if url.get_driver_name() == "aiomysql":
            options["connect_args"]["async_creator_fn"] = bounded_aiomysql_connect(
                settings.db_connect_timeout_s,
                database_nodes(url, settings, rotate=rotate),
                settings.db_galera_sync_wait,
            )
    if not pooled:
        options["poolclass"] = NullPool
        return options
    if is_in_memory_sqlite(url):
        return options  # SQLAlchemy's StaticPool: one connection, the one database
    options.update(
        poolclass=CountingQueuePool,  # SQLAlchemy's default, plus a waiting count
        # A fixed pool on SQLite too: SQLAlchemy's default for it (5 + 10 overflow) closed an
        # overflow connection on nearly every return under load and opened a new one for the
        # next request (a thread, a file open and the pragmas: 15% of reads at c=16, bench/).
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
    )
    if not is_sqlite(url):
        options.update(
            # No pre-ping on every checkout (a round trip per request): `ping_idle_connections`
            # pings only connections that sat idle, and LIFO keeps the busy ones in use.
            pool_use_lifo=True,
            pool_recycle=settings.db_pool_recycle_s,
            # `rollback_only_open_transactions` resets a returned connection instead.
            pool_reset_on_return=None,
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
        rollback_only_open_transactions(engine)
        recycle_failover_connections(engine, settings.db_failover_recycle_s)
    return engine


def create_read_pool(settings: Settings, url: URL | None = None) -> ReadPool | None:
    """A pool of its own for the read-only routes, behind a first-come-first-served gate.

    MySQL/MariaDB: autocommit, so a read is one round trip. In autocommit the read needs no
    COMMIT or ROLLBACK after it, and `skip_autocommit_rollback` lets SQLAlchemy skip the DBAPI
    rollback on close and on return to the pool. A separate pool, not a per-checkout switch of
    the isolation level, because switching costs two round trips and runs outside SQLAlchemy's
    error translation.

    SQLite (a file): `query_only` connections. WAL lets them read beside the writer without
    waiting; their own pool and gate keep a flood of reads (c=256) from holding every
    connection a write needs, and serve the readers in arrival order, so none waits past the
    pool timeout while others overtake it. None for an in-memory SQLite database, whose one
    connection is the database.

    Sessions, and so every write, stay on the main engine.
    """
    url = url or database_url(settings.database_url)
    limit = settings.db_pool_size + max(settings.db_max_overflow, 0)
    if is_sqlite(url):
        if is_in_memory_sqlite(url):
            return None
        reads = create_async_engine(url, **engine_options(url, settings))
        event.listen(reads.sync_engine, "connect", _set_sqlite_pragmas)
        event.listen(reads.sync_engine, "connect", _set_sqlite_read_only)
        return ReadPool(reads, limit, settings.db_pool_timeout_s)
    if not is_mysql(url):
        return None
    reads = create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,  # SQLAlchemy >= 2.0.43
        **engine_options(url, settings, rotate=True),
    )
    ping_idle_connections(reads)
    rollback_only_open_transactions(reads)
    recycle_failover_connections(reads, settings.db_failover_recycle_s)
    return ReadPool(reads, limit, settings.db_pool_timeout_s)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
