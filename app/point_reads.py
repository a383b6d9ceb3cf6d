"""Reads of one row by key, run on the driver's own cursor where the driver allows it.

SQLAlchemy compiles the statement once for the engine's dialect and hands out the pooled
connection (its checkout events included: the idle ping, the failover recycle); only the
execution skips SQLAlchemy's per-statement machinery (greenlet hand-off, execution context,
result metadata, Row objects). For a primary-key read that machinery cost more CPU than the
driver's whole round trip: ~200 µs of a ~950 µs request here (docs/benchmarks.md, "Fewer layers
per request"). Errors still come out as SQLAlchemy's `DBAPIError`, so the 503 handler and the
write-conflict retry see them as from any other statement, and a connection broken mid-query
(a disconnect, or a request cancelled by its deadline) is invalidated, as SQLAlchemy does.

aiosqlite's cursor has that shape too; app/db_sqlite.py makes its execute one hand-off to the
connection's thread. Other drivers run the statement through Core.
"""

from collections.abc import Awaitable, Callable
from typing import Any, cast

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

AnySelect = Select[*tuple[Any, ...]]

# Their driver connections give `cursor()` as an async context manager, with coroutine
# `execute(sql, args)` and `fetchone()`, and take the dialect's positional paramstyle.
DRIVER_CURSOR_DRIVERS = frozenset({"aiomysql", "asyncmy", "aiosqlite"})


class PointRead:
    """`statement`'s first row as a plain tuple (or None), compiled once per dialect."""

    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._compiled: dict[Dialect, _DriverStatement | None] = {}

    def _for(self, dialect: Dialect) -> "_DriverStatement | None":
        try:
            return self._compiled[dialect]
        except KeyError:
            driver_statement = None
            if dialect.driver in DRIVER_CURSOR_DRIVERS and dialect.positional:
                driver_statement = _DriverStatement(self.statement, dialect)
            self._compiled[dialect] = driver_statement
            return driver_statement

    async def first(
        self, source: AsyncConnection | AsyncEngine, **params: Any
    ) -> tuple[Any, ...] | None:
        """On `source`: a connection, or an engine to check one out of for this read alone
        (straight from its pool, without an AsyncConnection around it: one greenlet hand-off
        and two objects fewer per read)."""
        driver_statement = self._for(source.dialect)
        if driver_statement is None:
            if isinstance(source, AsyncEngine):
                async with source.connect() as connection:
                    return await self.first(connection, **params)
            row = (await source.execute(self.statement, params)).first()
            return None if row is None else tuple(row)
        args = tuple(params[name] for name in driver_statement.parameter_names)
        if isinstance(source, AsyncConnection):
            pooled = await source.get_raw_connection()
            return await driver_statement.run(pooled, args, source.invalidate)
        return await driver_statement.run_checked_out(source, args)


class _DriverStatement:
    """A statement compiled for one dialect, run on that driver's cursor."""

    def __init__(self, statement: AnySelect, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.dialect = dialect
        self.dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        self.sql = str(compiled)
        self.parameter_names: tuple[str, ...] = tuple(compiled.positiontup or ())

    def _translated(
        self, exc: Exception, pooled: PoolProxiedConnection | None, args: tuple[Any, ...] | None
    ) -> tuple[BaseException, bool]:
        """SQLAlchemy's DBAPIError for a driver error (as its own execution raises), and
        whether the connection is lost."""
        dbapi_connection = pooled.dbapi_connection if pooled is not None else None
        disconnected = self.dialect.is_disconnect(cast(Any, exc), dbapi_connection, None)
        error = DBAPIError.instance(
            self.sql if args is not None else None,
            args,
            exc,
            self.dbapi_error,
            hide_parameters=True,
            connection_invalidated=disconnected,
            dialect=self.dialect,
        )
        return error, disconnected

    async def run_checked_out(
        self, engine: AsyncEngine, args: tuple[Any, ...]
    ) -> tuple[Any, ...] | None:
        try:
            pooled = await engine.raw_connection()
        except Exception as exc:
            if not isinstance(exc, self.dbapi_error):
                raise  # the pool's own (a timeout), already SQLAlchemy's
            error, _disconnected = self._translated(exc, None, None)
            raise error from exc

        async def invalidate() -> None:
            await greenlet_spawn(pooled.invalidate)

        try:
            return await self.run(pooled, args, invalidate)
        finally:
            # Back to the pool; in a greenlet, as a reset on return may await the driver.
            await greenlet_spawn(pooled.close)

    async def run(
        self,
        pooled: PoolProxiedConnection,
        args: tuple[Any, ...],
        invalidate: Callable[[], Awaitable[None]],
    ) -> tuple[Any, ...] | None:
        driver_connection = pooled.driver_connection
        assert driver_connection is not None, "a checked-out connection has its driver's"
        try:
            async with driver_connection.cursor() as cursor:
                await cursor.execute(self.sql, args)
                row = await cursor.fetchone()
        except Exception as exc:
            if not isinstance(exc, self.dbapi_error):
                await invalidate()  # the protocol state is unknown
                raise
            error, disconnected = self._translated(exc, pooled, args)
            if disconnected:
                await invalidate()
            raise error from exc
        except BaseException:
            # Cancelled mid-round-trip (the request's deadline): the answer may still be on
            # its way, so the connection cannot serve another query.
            await invalidate()
            raise
        return None if row is None else tuple(row)
