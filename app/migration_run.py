"""One migration run made safe: the migration lock, bounded DDL lock waits and the journal."""

from collections.abc import Iterator
from contextlib import contextmanager

from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from app.config import Settings
from app.ddl_guard import guard_ddl
from app.migration_journal import Journal, warn_if_edited
from app.migration_lock import migration_lock


@contextmanager
def guarded_run(
    connection: Connection, settings: Settings, script: ScriptDirectory
) -> Iterator[Journal]:
    """Wrap Alembic's `run_migrations` on `connection`; configure it with the journal yielded.

    A connection handed in with a transaction of its caller's open is left in that transaction;
    otherwise every step gets its own (on SQLite, the lock's one exclusive transaction).
    """
    owned = not connection.in_transaction()
    lock = migration_lock(
        connection,
        timeout_s=settings.migration_lock_timeout_s,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )
    with lock, guard_ddl(connection, settings) as guard:
        journal = Journal(connection, owns_transaction=owned)
        if guard is not None:
            guard.applied.clear()  # creating the journal is not part of any migration
        warn_if_edited(connection, script)
        if owned and connection.dialect.name != "sqlite":
            connection.commit()  # so Alembic runs each step in a transaction of its own
        with journal.recording_failure():
            yield journal
