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

from app.backend import is_mysql, is_sqlite
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
    if not is_sqlite(url) or url.database not in (None, "", ":memory:"):
        options["poolclass"] = CountingQueuePool  # SQLAlchemy's default, plus a waiting count
    if not is_sqlite(url):
        options.update(
            # No pre-ping on every checkout (a round trip per request): `ping_idle_connections`
            # pings only connections that sat idle, and LIFO keeps the busy ones in use.
            pool_use_lifo=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
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
    """MySQL/MariaDB: an autocommit pool for the read-only routes, so a read is one round trip.

    In autocommit the read needs no COMMIT or ROLLBACK after it, and `skip_autocommit_rollback`
    lets SQLAlchemy skip the DBAPI rollback on close and on return to the pool. A separate pool,
    not a per-checkout switch of the isolation level, because switching costs two round trips
    and runs outside SQLAlchemy's error translation. Sessions, and so every write, stay on the
    main engine. None elsewhere: SQLite reads go through the main engine.
    """
    url = url or database_url(settings.database_url)
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
    limit = settings.db_pool_size + max(settings.db_max_overflow, 0)
    return ReadPool(reads, limit, settings.db_pool_timeout_s)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
