"""Galera's migration lock: a lease on a row of `migration_lock`, kept by a thread of its own.

GET_LOCK is per node under Galera, so two replicas on two nodes would both get it. A row is
cluster-wide: taking the lock is an UPDATE of the database's row in a transaction of its own, and
certification lets only one of two concurrent UPDATEs of one row commit (the other's COMMIT fails
with error 1213), so one process holds it. The holder renews the lease every third of its length
on its own connection, so a long step keeps it; a holder that died stops renewing, and once its
lease has expired the next migration takes it over. Expiry is by the server's clock
(UTC_TIMESTAMP), so the nodes' clocks must agree, as Galera itself expects.
"""

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from sqlalchemy import Executable, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.migrate.config import LOCK_TABLE

logger = logging.getLogger(__name__)

# ER_LOCK_DEADLOCK is how Galera reports a lost certification; ER_LOCK_WAIT_TIMEOUT a wait for
# the row behind another process on the same node. Both mean "someone else wrote it: try again".
RETRY_CODES = frozenset({1213, 1205})
POLL_S = 0.25
CONNECT_TIMEOUT_S = 10

CREATE = f"""CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    holder VARCHAR(255) NULL,
    acquired_at DATETIME(6) NULL,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""
EXISTS = text(
    "SELECT COUNT(*) FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table"
)
# The f-strings below interpolate only constants (S608 is about values, which are all bound).
ADD_ROW = text(
    f"INSERT IGNORE INTO {LOCK_TABLE} (name, expires_at) VALUES (:name, UTC_TIMESTAMP(6))"  # noqa: S608
)
READ = text(f"SELECT holder, expires_at FROM {LOCK_TABLE} WHERE name = :name")  # noqa: S608
UNTIL = "UTC_TIMESTAMP(6) + INTERVAL :lease_us MICROSECOND"
TAKE = text(
    f"UPDATE {LOCK_TABLE} SET holder = :holder, acquired_at = UTC_TIMESTAMP(6), "  # noqa: S608
    f"expires_at = {UNTIL} "
    "WHERE name = :name AND (holder IS NULL OR expires_at < UTC_TIMESTAMP(6))"
)
RENEW = text(
    f"UPDATE {LOCK_TABLE} SET expires_at = {UNTIL} WHERE name = :name AND holder = :holder"  # noqa: S608
)
RELEASE = text(
    f"UPDATE {LOCK_TABLE} SET holder = NULL, expires_at = UTC_TIMESTAMP(6) "  # noqa: S608
    "WHERE name = :name AND holder = :holder"
)


def is_retryable(exc: DBAPIError) -> bool:
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in RETRY_CODES


class Lease:
    """This process's hold on one lock row: `acquire`, then `release` (renewed in between)."""

    def __init__(self, url: URL, name: str, *, lease_s: float) -> None:
        self.url = url
        self.name = name
        self.lease_s = lease_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.lost = False  # a renewal found the row taken: the lease had expired meanwhile
        self._settled = threading.Event()  # acquired, or failed to
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def acquire(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the row; `TimeoutError` names the holder."""
        # The thread runs an event loop of its own: the caller's loop (Alembic's env.py runs the
        # migration in one) is blocked while a step runs, and renewals must not wait for it.
        self._thread = threading.Thread(
            target=self._run, args=(timeout_s,), name="migration-lease", daemon=True
        )
        self._thread.start()
        self._settled.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _params(self, **extra: Any) -> dict[str, Any]:
        lease_us = int(self.lease_s * 1_000_000)
        return {"name": self.name, "holder": self.holder, "lease_us": lease_us, **extra}

    def _run(self, timeout_s: float) -> None:
        try:
            asyncio.run(self._hold(timeout_s))
        except BaseException as exc:
            if self._settled.is_set():
                logger.exception("migration lease %s: keeping it failed", self.name)
            else:
                self._error = exc
        finally:
            self._settled.set()

    async def _hold(self, timeout_s: float) -> None:
        engine = create_async_engine(
            self.url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
        )
        try:
            await self._take(engine, timeout_s)
            self._settled.set()
            try:
                renew_every = self.lease_s / 3
                while not await asyncio.to_thread(self._stop.wait, renew_every):
                    if not await self._renew(engine):
                        return
            finally:
                await self._release(engine)
        finally:
            await engine.dispose()

    async def _ensure_row(self, engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            # A DDL statement is replicated to every node in total order even when it changes
            # nothing, which stalls the cluster: only create the table when it is missing.
            if not (await connection.execute(EXISTS, {"table": LOCK_TABLE})).scalar():
                await connection.exec_driver_sql(CREATE)
            await connection.commit()
        # Two processes adding the row on two nodes: one certifies, one retries.
        await self._write_retrying(engine, ADD_ROW)

    async def _take(self, engine: AsyncEngine, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        await self._ensure_row(engine)
        while True:
            previous = None
            try:
                async with engine.begin() as connection:
                    previous = (await connection.execute(READ, self._params())).first()
                    taken = (await connection.execute(TAKE, self._params())).rowcount == 1
            except DBAPIError as exc:  # lost the race: the row is someone else's now
                if not is_retryable(exc):
                    raise
                taken = False
            if taken:
                if previous is not None and previous.holder:
                    logger.warning(
                        "took over migration lock %s from %s, whose lease expired at %s UTC",
                        self.name,
                        previous.holder,
                        previous.expires_at,
                    )
                return
            if time.monotonic() >= deadline:
                async with engine.connect() as connection:
                    row = (await connection.execute(READ, self._params())).first()
                holder = row.holder if row is not None else "?"
                until = row.expires_at if row is not None else "?"
                raise TimeoutError(f"holder {holder}, lease until {until} UTC")
            await asyncio.sleep(POLL_S)

    async def _renew(self, engine: AsyncEngine) -> bool:
        """Extend the lease; False once the row is no longer ours."""
        try:
            async with engine.begin() as connection:
                renewed = (await connection.execute(RENEW, self._params())).rowcount == 1
        except DBAPIError as exc:
            # A dropped connection or a conflict: the lease still runs; try at the next tick.
            logger.warning("migration lease %s: renewal failed, retrying: %s", self.name, exc)
            return True
        if not renewed:
            self.lost = True
            logger.error(
                "migration lease %s expired before it was renewed and is no longer held by %s",
                self.name,
                self.holder,
            )
        return renewed

    async def _release(self, engine: AsyncEngine) -> None:
        if not await self._write_retrying(engine, RELEASE, attempts=20):
            logger.error(
                "migration lease %s: could not release it; it expires by itself", self.name
            )

    async def _write_retrying(
        self, engine: AsyncEngine, statement: Executable, attempts: int | None = None
    ) -> bool:
        """`statement` in a transaction of its own, run again after a write conflict or a lock
        wait timeout (RETRY_CODES); False once `attempts` (None: no limit) all conflicted."""
        tried = 0
        while attempts is None or tried < attempts:
            tried += 1
            try:
                async with engine.begin() as connection:
                    await connection.execute(statement, self._params())
                return True
            except DBAPIError as exc:
                if not is_retryable(exc):
                    raise
                await asyncio.sleep(POLL_S)
        return False
