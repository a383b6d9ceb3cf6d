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

from typing import Any, cast

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

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

    async def first(self, connection: AsyncConnection, **params: Any) -> tuple[Any, ...] | None:
        driver_statement = self._for(connection.dialect)
        if driver_statement is None:
            row = (await connection.execute(self.statement, params)).first()
            return None if row is None else tuple(row)
        return await driver_statement.first(connection, params)


class _DriverStatement:
    """A statement compiled for one dialect, run on that driver's cursor."""

    def __init__(self, statement: AnySelect, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.dialect = dialect
        self.sql = str(compiled)
        self.parameter_names: tuple[str, ...] = tuple(compiled.positiontup or ())

    async def first(
        self, connection: AsyncConnection, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        args = tuple(params[name] for name in self.parameter_names)
        pooled = await connection.get_raw_connection()
        driver_connection = pooled.driver_connection
        assert driver_connection is not None, "a checked-out connection has its driver's"
        try:
            async with driver_connection.cursor() as cursor:
                await cursor.execute(self.sql, args)
                row = await cursor.fetchone()
        except Exception as exc:
            dbapi_error: type[Exception] = self.dialect.loaded_dbapi.Error
            if not isinstance(exc, dbapi_error):
                await connection.invalidate()  # the protocol state is unknown
                raise
            disconnected = self.dialect.is_disconnect(cast(Any, exc), pooled.dbapi_connection, None)
            if disconnected:
                await connection.invalidate()
            raise DBAPIError.instance(
                self.sql,
                args,
                exc,
                dbapi_error,
                hide_parameters=True,
                connection_invalidated=disconnected,
                dialect=self.dialect,
            ) from exc
        except BaseException:
            # Cancelled mid-round-trip (the request's deadline): the answer may still be on
            # its way, so the connection cannot serve another query.
            await connection.invalidate()
            raise
        return None if row is None else tuple(row)
