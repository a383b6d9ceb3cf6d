"""The migration lock: one process migrates at a time; the others wait, then find nothing to do."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.util import CommandError
from sqlalchemy import Connection, text

from app.backend import is_mysql, is_postgresql, is_sqlite

logger = logging.getLogger(__name__)

# One lock per database: GET_LOCK names are server-wide, and MySQL caps them at 64 characters.
LOCK_PREFIX = "alembic-migrate:"
PG_LOCK_KEY = 0x616C656D  # "alem": an arbitrary constant shared by every copy of this code


class MigrationLockError(CommandError):
    """The migration lock could not be taken: another migration runs, or the server said no."""


@contextmanager
def migration_lock(
    connection: Connection, *, timeout_s: float, sqlite_busy_timeout_ms: int
) -> Iterator[None]:
    """Hold the database's migration lock for the body; raise `MigrationLockError` on timeout.

    On SQLite the lock is an exclusive transaction that the whole migration runs in: it is
    committed when the body succeeds and rolled back when it raises. A connection handed in
    inside a transaction of its caller's is left to that caller (no SQLite lock is taken).
    """
    dialect = connection.dialect
    if is_sqlite(dialect):
        with _sqlite_exclusive(connection, timeout_s, sqlite_busy_timeout_ms):
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
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar()
    name = f"{LOCK_PREFIX}{database}"[:64]
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
