"""Bounded lock waits for DDL on MySQL/MariaDB: short lock_wait_timeout, retries, named blockers.

A DDL statement needs an exclusive metadata lock on its table. While it waits for one (behind any
open transaction that touched the table), every new query on that table queues behind *it*; with
the server's default lock_wait_timeout of a day, one idle transaction stalls the whole table. So
each DDL statement waits at most `ddl_lock_wait_timeout_s`, backs off to let the queue drain, and
retries a bounded number of times before giving up with the name of the connection in the way.
"""

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic.util import CommandError
from sqlalchemy import Connection, event
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

from app.backend import is_mysql, supports_alter_algorithm_floor
from app.config import Settings
from app.migrate.blockers import describe_blockers, short_statement
from app.migrate.capture import TRIGGER_PREFIX
from app.migrate.config import VERSION_TABLE, is_bookkeeping_table

logger = logging.getLogger(__name__)

DDL = re.compile(r"^\s*(ALTER|CREATE|DROP|RENAME|TRUNCATE)\b", re.IGNORECASE)
# A migration step's write fence (see `fence`) waits for metadata locks exactly like DDL.
LOCK_TABLES = re.compile(r"^\s*LOCK\s+TABLES?\b", re.IGNORECASE)
TABLE_MADE_OR_DROPPED = re.compile(
    r"^\s*(?:CREATE|DROP)\s+(?:TABLE|TRIGGER)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?`?(\w+)`?",
    re.IGNORECASE,
)
COPY_ALGORITHM = re.compile(r"\bALGORITHM\s*=?\s*COPY\b", re.IGNORECASE)
TABLE_OF_DDL = re.compile(
    r"\b(?:ALTER|DROP|TRUNCATE|RENAME|LOCK)\s+TABLES?\s+(?:IF\s+EXISTS\s+)?`?(\w+)`?"
    r"|\bON\s+`?(\w+)`?\s*(?:\(|FOR\s+EACH\b)",
    re.IGNORECASE,
)
VERSION_WRITE = re.compile(rf"^\s*(INSERT|UPDATE|DELETE)\b.*\b{VERSION_TABLE}\b", re.I | re.S)
LOCK_WAIT_TIMEOUT = 1205  # ER_LOCK_WAIT_TIMEOUT: metadata-lock and row-lock waits alike
NOT_SUPPORTED = (1845, 1846)  # ER_ALTER_OPERATION_NOT_SUPPORTED(_REASON): would copy the table


class DdlGaveUp(CommandError):
    """A DDL statement could not get its locks within the bounded attempts."""


class TableCopyRefused(CommandError):
    """A DDL statement would copy or rebuild the table, which is refused unless allowed."""


@contextmanager
def guard_ddl(connection: Connection, settings: Settings) -> Iterator["DdlGuard | None"]:
    """Bound every DDL statement run on `connection` for the body (MySQL/MariaDB only)."""
    if not is_mysql(connection.dialect):
        yield None
        return
    guard = DdlGuard(connection, settings)
    previous = connection.exec_driver_sql(
        "SELECT @@SESSION.lock_wait_timeout, @@SESSION.alter_algorithm"
        if guard.algorithm is not None
        else "SELECT @@SESSION.lock_wait_timeout, NULL"
    ).one()
    guard.set_session(settings.ddl_lock_wait_timeout_s, guard.algorithm)
    engine = connection.engine
    event.listen(engine, "do_execute", guard.do_execute)
    event.listen(engine, "do_execute_no_params", guard.do_execute_no_params)
    try:
        yield guard
    finally:
        event.remove(engine, "do_execute", guard.do_execute)
        event.remove(engine, "do_execute_no_params", guard.do_execute_no_params)
        if not connection.closed and not connection.invalidated:
            guard.set_session(int(previous[0]), previous[1])


class DdlGuard:
    """The event hooks that run each DDL statement with bounded waits and retries."""

    def __init__(self, connection: Connection, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings
        # MariaDB picks the most efficient algorithm an ALTER supports; NOCOPY as the floor makes
        # it refuse (error 1845/1846) instead of quietly copying or rebuilding the table.
        self.algorithm: str | None = None
        if supports_alter_algorithm_floor(connection.dialect):
            self.algorithm = "DEFAULT" if settings.migration_allow_table_copy else "NOCOPY"
        # DDL that ran since alembic_version was last written: a half-done migration on give-up.
        # Whoever runs set-up DDL of its own before the first step clears it.
        self.applied: list[str] = []

    def set_session(self, lock_wait_timeout: int, algorithm: str | None) -> None:
        self.connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {lock_wait_timeout:d}")
        if algorithm is not None:
            assert algorithm.isalpha()
            self.connection.exec_driver_sql(f"SET SESSION alter_algorithm = '{algorithm}'")

    def do_execute(
        self, cursor: DBAPICursor, statement: str, parameters: Any, context: ExecutionContext
    ) -> bool | None:
        return self._execute(cursor, statement, parameters, context)

    def do_execute_no_params(
        self, cursor: DBAPICursor, statement: str, context: ExecutionContext
    ) -> bool | None:
        return self._execute(cursor, statement, None, context)

    def _execute(
        self,
        cursor: DBAPICursor,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None,
    ) -> bool | None:
        if context is None or getattr(context, "root_connection", None) is not self.connection:
            return None
        if VERSION_WRITE.match(statement):
            self.applied.clear()
            return None
        locking = bool(LOCK_TABLES.match(statement))
        if not locking and not DDL.match(statement):
            return None
        if COPY_ALGORITHM.search(statement) and not self.settings.migration_allow_table_copy:
            raise TableCopyRefused(
                f"refusing ALGORITHM=COPY in `{short_statement(statement)}`: it locks and "
                "copies the table; set MIGRATION_ALLOW_TABLE_COPY=1 to allow it deliberately"
            )
        attempts = max(1, self.settings.ddl_max_attempts)
        for attempt in range(1, attempts + 1):
            try:
                if parameters is None:
                    cursor.execute(statement)
                else:
                    cursor.execute(statement, parameters)
            except Exception as exc:
                code = _error_code(exc)
                if code in NOT_SUPPORTED:
                    raise TableCopyRefused(
                        f"`{short_statement(statement)}` cannot run without copying or "
                        f"rebuilding the table ({exc}); rewrite it as an expand/contract change, "
                        "or set MIGRATION_ALLOW_TABLE_COPY=1 to allow the copy deliberately"
                    ) from exc
                if code != LOCK_WAIT_TIMEOUT:
                    raise
                if attempt == attempts:
                    raise DdlGaveUp(self._give_up_message(statement, attempts)) from exc
                pause = min(
                    self.settings.ddl_retry_backoff_s * 2 ** (attempt - 1),
                    self.settings.ddl_retry_backoff_max_s,
                )
                logger.warning(
                    "DDL waited %s s for its table lock (attempt %d/%d), retrying in %.1f s: %s",
                    self.settings.ddl_lock_wait_timeout_s,
                    attempt,
                    attempts,
                    pause,
                    short_statement(statement),
                )
                # Sleeping lets the readers that queued behind the DDL run before it queues again.
                time.sleep(pause)
            else:
                if not locking and not _is_bookkeeping(statement):
                    self.applied.append(short_statement(statement))
                return True
        raise AssertionError("unreachable")

    def _give_up_message(self, statement: str, attempts: int) -> str:
        blockers = describe_blockers(self.connection, _table_of(statement))
        done = (
            "Statements of this migration already applied (alembic_version not yet updated; "
            "make the migration finish or revert them by hand): " + "; ".join(self.applied)
            if self.applied
            else "Nothing of this migration was applied: schema and alembic_version are "
            "unchanged, so simply run the command again"
        )
        return (
            f"gave up on `{short_statement(statement)}` after {attempts} attempts of "
            f"{self.settings.ddl_lock_wait_timeout_s} s each waiting for its table lock. "
            f"Blocked by: {blockers}. {done}."
        )


def _table_of(statement: str) -> str | None:
    found = TABLE_OF_DDL.search(statement)
    return (found.group(1) or found.group(2)) if found else None


def _is_bookkeeping(statement: str) -> bool:
    """An archive or its capture triggers are no part of the schema a half-done step leaves."""
    found = TABLE_MADE_OR_DROPPED.match(statement)
    if found is None:
        return False
    name = found.group(1)
    return is_bookkeeping_table(name) or name.startswith(TRIGGER_PREFIX)


def _error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None
