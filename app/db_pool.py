"""MySQL/MariaDB connection pools tuned for the hot path: a bounded handshake, pings only for
idle connections, and an autocommit pool for reads (one round trip each), measured in bench/."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, PoolResetState

from app.db_nodes import FAILOVER_MARK, NodeOrder, prepare_node

logger = logging.getLogger(__name__)


def bounded_aiomysql_connect(
    timeout_s: float, nodes: NodeOrder | None = None, sync_wait: int = 0
) -> Callable[..., Awaitable[Any]]:
    """aiomysql.connect, with `timeout_s` bounding the handshake as well as the TCP connect.

    aiomysql's own connect_timeout stops at the TCP connect: a server (or proxy) that accepts
    but never answers would hold the pool checkout, and its request, forever. With `nodes`, the
    nodes are tried in their order until one answers and may serve (`prepare_node`: up, and
    Synced if Galera); without, the URL's host. A connection that skipped a node is marked.
    """
    import aiomysql

    async def connect_one(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                connection = await aiomysql.connect(*args, **kwargs)
                try:
                    problem = await prepare_node(connection, sync_wait)
                except BaseException:
                    connection.close()
                    raise
        except TimeoutError:
            # As a driver error, so that SQLAlchemy wraps it and the client gets a 503.
            raise aiomysql.OperationalError(2013, "handshake timed out") from None
        if problem is not None:
            connection.close()
            # 1047: what a Galera node that may not serve answers to queries.
            raise aiomysql.OperationalError(1047, f"node not ready: {problem}")
        return connection

    async def connect(*args: Any, **kwargs: Any) -> Any:
        if nodes is None:  # the URL's host (or socket), as the URL says
            return await connect_one(args, kwargs)
        order = nodes.next_order()
        for tried, node in enumerate(order):
            try:
                target = {**kwargs, "host": node.host, "port": node.port}
                connection = await connect_one(args, target)
            except aiomysql.Error as exc:
                if tried == len(order) - 1:
                    raise
                logger.warning("database node %s skipped: %s", node, exc)
                continue
            setattr(connection, FAILOVER_MARK, tried > 0)
            return connection
        raise AssertionError("unreachable: the last node's error is raised")

    return connect


class ReadPool:
    """The read engine (app.db.create_read_pool), and a first-come-first-served gate in front
    of its pool.

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
        self.waiting = 0  # requests queued at the gate (a metric)

    @property
    def in_use(self) -> int:
        return int(getattr(self.engine.sync_engine.pool, "checkedout", lambda: 0)())

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.admitted() as engine, engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[AsyncEngine]:
        """Past the gate: the engine, whose pool then has a connection for this request
        (for `PointRead.first`, which checks it out and back itself)."""
        if self._gate is None:  # made on first use, so it belongs to the running loop
            self._gate = asyncio.Semaphore(self.limit)
        if not self._gate.locked():
            # A connection free and nobody queued: acquire() returns at once, without the
            # timer that bounding a wait costs every request.
            await self._gate.acquire()
        else:
            await self._wait_at_gate(self._gate)
        try:
            yield self.engine
        finally:
            self._gate.release()

    async def _wait_at_gate(self, gate: asyncio.Semaphore) -> None:
        self.waiting += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                await gate.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"no pooled read connection within {self.timeout_s:g} s"
            ) from None
        finally:
            self.waiting -= 1


class CountingQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, counting the checkouts under way: the requests waiting
    for a connection (for a free one, or for a new one to connect). A metric (app.metrics)."""

    waiting = 0
    # Log as the pool it extends: SQLAlchemy keeps its own loggers at WARNING unless asked.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"

    def _do_get(self) -> ConnectionPoolEntry:
        # The pool's one override point for getting a connection; runs in the request's greenlet.
        self.waiting += 1
        try:
            return super()._do_get()
        finally:
            self.waiting -= 1


# A connection back in use within this many seconds is taken as alive; older ones are pinged.
IDLE_PING_AFTER_S = 1.0


def rollback_only_open_transactions(engine: AsyncEngine) -> None:
    """Reset a connection returned to the pool with a ROLLBACK only if a transaction is open.

    For engines made with `pool_reset_on_return=None`. SQLAlchemy's default sends ROLLBACK on
    every return; after the route's COMMIT it ends nothing and costs a round trip per write (a
    third of a registration's: INSERT, COMMIT, ROLLBACK). The server reports in every answer
    whether a transaction is open, and aiomysql keeps that flag; a driver without it gets the
    ROLLBACK every time.
    """

    def on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        if state.terminate_only or not state.asyncio_safe or state.transaction_was_reset:
            return  # closing anyway; or no await possible here; or already rolled back
        in_transaction = getattr(dbapi_connection.driver_connection, "get_transaction_status", None)
        if in_transaction is None or in_transaction():
            dbapi_connection.rollback()

    event.listen(engine.sync_engine, "reset", on_reset)


def ping_idle_connections(engine: AsyncEngine) -> None:
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


def recycle_failover_connections(engine: AsyncEngine, after_s: float) -> None:
    """Replace a connection made while a node before it was down once it is `after_s` old.

    Pooled connections live for `db_pool_recycle_s` (half an hour): without this, a node that
    rejoined would get no traffic until then. The replacement tries the nodes in order again
    and lands on the rejoined node if it is back, or on a live one again (one connect per
    connection per `after_s` while a node stays down).
    """

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        record.info.pop("failover_since", None)
        if getattr(dbapi_connection.driver_connection, FAILOVER_MARK, False):
            record.info["failover_since"] = time.monotonic()

    def on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("failover_since")
        if since is not None and time.monotonic() - since > after_s:
            raise DisconnectionError("connection to a fallback node, trying the nodes again")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "checkout", on_checkout)
