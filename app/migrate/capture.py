"""MySQL/MariaDB: copy a table into its archive while the app keeps reading and writing.

Copying a million rows takes seconds; holding the table locked for that long would stall every
reader. So, as pt-online-schema-change does, triggers on the table mirror each insert, update
and delete into the archive from before the copy starts, and the copy goes in chunks of keys,
each a short transaction whose locking read waits only for the writers of those rows. When the
step then takes its fence for the drop (see `fence`), the archive already matches the table, the
triggers are dropped under the fence, and the fence lasts as long as the DROP, not the copy.

Without the privilege to create triggers (TRIGGER, and SUPER or log_bin_trust_function_creators
when binary logging is on), `start_capture` says so and the caller copies inside the fence.
"""

import hashlib
import logging
import time
from collections.abc import Sequence

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from app.config import Settings

logger = logging.getLogger(__name__)

CHUNK_ROWS = 10_000
TRIGGER_PREFIX = "migcap_"
# TRIGGER denied; SUPER needed (binary logging); access denied: copy inside the fence instead.
NOT_ALLOWED = (1142, 1419, 1227, 1044)
RETRYABLE = (1205, 1213)  # a row lock wait timed out; a deadlock with a writer


def trigger_names(archive: str) -> tuple[str, str, str]:
    """The capture triggers of `archive` (deterministic: a later run finds leftovers)."""
    base = TRIGGER_PREFIX + hashlib.sha256(archive.encode()).hexdigest()[:12]
    return f"{base}_ins", f"{base}_upd", f"{base}_del"


def _error_code(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def drop_capture(connection: Connection, archive: str) -> None:
    """Drop the capture triggers of `archive`, if any (before the archive itself goes)."""
    for name in trigger_names(archive):
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {_q(connection, name)}")


def start_capture(
    connection: Connection, table: str, archive: str, columns: Sequence[str], key: str
) -> bool:
    """Mirror every change of `table` into `archive` from now on; False if not allowed."""
    q = connection.dialect.identifier_preparer.quote
    t, a, k = q(table), q(archive), q(key)
    names = ", ".join(q(c) for c in columns)
    new_values = ", ".join(f"NEW.{q(c)}" for c in columns)
    # Identifiers only, each quoted by the dialect: nothing here comes from input.
    upsert = f"REPLACE INTO {a} ({names}) VALUES ({new_values})"  # noqa: S608
    insert, update, delete = trigger_names(archive)
    statements = [
        f"CREATE TRIGGER {q(insert)} AFTER INSERT ON {t} FOR EACH ROW {upsert}",
        # A changed key leaves its old archived row behind otherwise.
        f"CREATE TRIGGER {q(update)} AFTER UPDATE ON {t} FOR EACH ROW BEGIN "  # noqa: S608
        f"DELETE FROM {a} WHERE {k} = OLD.{k} AND NOT (OLD.{k} <=> NEW.{k}); {upsert}; END",
        f"CREATE TRIGGER {q(delete)} AFTER DELETE ON {t} FOR EACH ROW "  # noqa: S608
        f"DELETE FROM {a} WHERE {k} = OLD.{k}",
    ]
    try:
        for statement in statements:
            connection.exec_driver_sql(statement)
    except DBAPIError as exc:
        if _error_code(exc) not in NOT_ALLOWED:
            raise
        drop_capture(connection, archive)
        logger.warning(
            "cannot create triggers on %s (%s): the archive copy runs with writers and readers "
            "held off the table for its whole length",
            table,
            exc.orig,
        )
        return False
    return True


def copy_in_chunks(
    connection: Connection,
    table: str,
    archive: str,
    columns: Sequence[str],
    key: str,
    settings: Settings,
    chunk_rows: int = CHUNK_ROWS,
) -> None:
    """Copy `table` into `archive` `chunk_rows` keys at a time, one short transaction each.

    Chunks follow the key's order (keyset), so sparse keys cost nothing. Rows the capture
    triggers already mirrored are newer than the copy's: they are kept.
    """
    q = connection.dialect.identifier_preparer.quote
    t, a, k = q(table), q(archive), q(key)
    names = ", ".join(q(c) for c in columns)

    def copy(where: str) -> str:
        return (
            f"INSERT INTO {a} ({names}) SELECT {names} FROM {t} WHERE {where} "  # noqa: S608
            f"ON DUPLICATE KEY UPDATE {a}.{k} = {a}.{k}"
        )

    low = connection.execute(text(f"SELECT MIN({k}) FROM {t}")).scalar()  # noqa: S608
    bound = f"{k} >= :low"  # the first chunk starts at the smallest key, the others after one
    while low is not None:
        chunk_end = text(
            f"SELECT {k} FROM {t} WHERE {bound} ORDER BY {k} LIMIT 1 OFFSET :n"  # noqa: S608
        )
        end = connection.execute(chunk_end, {"low": low, "n": chunk_rows - 1}).scalar()
        if end is None:  # the last chunk: everything from `low` on
            _with_retries(connection, settings, copy(bound), {"low": low})
            return
        _with_retries(
            connection, settings, copy(f"{bound} AND {k} <= :end"), {"low": low, "end": end}
        )
        bound, low = f"{k} > :low", end


def _with_retries(
    connection: Connection, settings: Settings, statement: str, params: dict[str, object]
) -> None:
    attempts = max(1, settings.ddl_max_attempts)
    for attempt in range(1, attempts + 1):
        try:
            connection.execute(text(statement), params)
            # Ends the chunk's transaction (and its row locks) without ending SQLAlchemy's
            # view of the step's, which DDL statements commit the same way.
            connection.exec_driver_sql("COMMIT")
            return
        except DBAPIError as exc:
            connection.exec_driver_sql("ROLLBACK")
            if _error_code(exc) not in RETRYABLE or attempt == attempts:
                raise
            pause = settings.ddl_retry_backoff_s * attempt
            time.sleep(min(pause, settings.ddl_retry_backoff_max_s))


def _q(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)
