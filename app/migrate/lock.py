"""The migration lock: one process migrates at a time; the others wait, then find nothing to do.

SQLite: an exclusive transaction. MySQL/MariaDB: GET_LOCK, except on a Galera node, where named
locks are per node and the lock is a lease row instead (app/migrate/lease.py). PostgreSQL: an
advisory lock.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.util import CommandError
from sqlalchemy import Connection, text

from app.backend import is_galera, is_mysql, is_postgresql, is_sqlite
from app.migrate.lease import Lease

logger = logging.getLogger(__name__)

# One lock per database: GET_LOCK names are server-wide, and MySQL caps them at 64 characters.
LOCK_PREFIX = "alembic-migrate:"
PG_LOCK_KEY = 0x616C656D  # "alem": an arbitrary constant shared by every copy of this code


class MigrationLockError(CommandError):
    """The migration lock could not be taken: another migration runs, or the server said no."""


@contextmanager
def migration_lock(
    connection: Connection,
    *,
    timeout_s: float,
    sqlite_busy_timeout_ms: int,
    lease_s: float = 30.0,
) -> Iterator[None]:
    """Hold the database's migration lock for the body; raise `MigrationLockError` on timeout.

    On SQLite the lock is an exclusive transaction that the whole migration runs in: it is
    committed when the body succeeds and rolled back when it raises. A connection handed in
    inside a transaction of its caller's is left to that caller (no SQLite lock is taken).
    On Galera, `lease_s` is how long the lock outlives a holder that died.
    """
    dialect = connection.dialect
    if is_sqlite(dialect):
        with _sqlite_exclusive(connection, timeout_s, sqlite_busy_timeout_ms):
            yield
    elif is_mysql(dialect) and _on_galera(connection):
        with _galera_lease(connection, timeout_s, lease_s):
            yield
    elif is_mysql(dialect):
        with _mysql_named_lock(connection, timeout_s):
            yield
    elif is_postgresql(dialect):
        with _pg_advisory_lock(connection, timeout_s):
            yield
    else:
        logger.warning("no migration lock for %s: run one migration at a time", dialect.name)
        yield


def _lock_name(connection: Connection) -> str:
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar()
    return f"{LOCK_PREFIX}{database}"[:64]


def _on_galera(connection: Connection) -> bool:
    owned = not connection.in_transaction()
    galera = is_galera(connection)
    if owned:
        connection.rollback()  # the question began a transaction: the lock paths check for one
    return galera


@contextmanager
def _galera_lease(connection: Connection, timeout_s: float, lease_s: float) -> Iterator[None]:
    owned = not connection.in_transaction()
    name = _lock_name(connection)
    lease = Lease(connection.engine.url, name, lease_s=lease_s)
    try:
        lease.acquire(timeout_s)
    except TimeoutError as exc:
        raise MigrationLockError(
            f"another migration ({exc}) held lock {name!r} for over {timeout_s:g} s; "
            "try again when it has finished"
        ) from exc
    try:
        yield
    finally:
        if owned and connection.in_transaction():
            connection.rollback()  # the migrations committed their work; end any leftover
        lease.release()
        if lease.lost:
            logger.error("the migration lock's lease expired during the run: check the journal")


@contextmanager
def _sqlite_exclusive(connection: Connection, timeout_s: float, busy_ms: int) -> Iterator[None]:
    if connection.in_transaction():
        yield
        return
    # WAL readers keep reading during an EXCLUSIVE transaction; only other writers wait.
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    try:
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
    except Exception as exc:
        connection.rollback()
        raise MigrationLockError(
            f"another migration held the SQLite database for over {timeout_s:g} s: {exc}"
        ) from exc
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {busy_ms}")
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


@contextmanager
def _mysql_named_lock(connection: Connection, timeout_s: float) -> Iterator[None]:
    owned = not connection.in_transaction()
    name = _lock_name(connection)
    got = connection.execute(
        text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout_s}
    ).scalar()
    if got is None:  # NULL: an error such as the thread being killed, not a timeout
        raise MigrationLockError(f"GET_LOCK({name!r}) failed (returned NULL)")
    if got != 1:
        holder = connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": name}).scalar()
        raise MigrationLockError(
            f"another migration (connection {holder}) held lock {name!r} for over "
            f"{timeout_s:g} s; try again when it has finished"
        )
    try:
        yield
    finally:
        if owned and connection.in_transaction():
            connection.rollback()  # the migrations committed their work; end any leftover
        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        if owned:
            connection.commit()


@contextmanager
def _pg_advisory_lock(connection: Connection, timeout_s: float) -> Iterator[None]:
    owned = not connection.in_transaction()
    # Poll the non-blocking form so the wait is bounded, like GET_LOCK's timeout.
    deadline = time.monotonic() + timeout_s
    try_lock = text("SELECT pg_try_advisory_lock(:key)")
    while not connection.execute(try_lock, {"key": PG_LOCK_KEY}).scalar():
        if time.monotonic() > deadline:
            raise MigrationLockError(f"another migration held the lock for over {timeout_s:g} s")
        time.sleep(0.2)
    try:
        yield
    finally:
        if owned and connection.in_transaction():
            connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
        if owned:
            connection.commit()
