"""One migration run made safe: the lock, bounded DDL lock waits, write fences and the journal."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection

from app.backend import is_sqlite
from app.config import Settings
from app.migrate.archive import fence_pending_restores
from app.migrate.catalog import ensure_catalog, register_untracked
from app.migrate.ddl_guard import guard_ddl
from app.migrate.fence import release_fence
from app.migrate.integrity import guard_applied_migrations
from app.migrate.journal import Journal
from app.migrate.lock import migration_lock


class RunRecorder(Protocol):
    """What env.py hands Alembic for a run: `configure` options, and the context to follow."""

    def options(self) -> dict[str, Any]: ...

    def follow(self, migration_context: MigrationContext) -> None: ...


class _Unrecorded:
    """For commands that change no revision (current, check, revision): nothing to record."""

    def options(self) -> dict[str, Any]:
        return {}

    def follow(self, migration_context: MigrationContext) -> None:
        return None


@contextmanager
def guarded_run(
    connection: Connection, settings: Settings, script: ScriptDirectory, *, changes_revision: bool
) -> Iterator[RunRecorder]:
    """Wrap Alembic's `run_migrations` on `connection`; configure it with what is yielded.

    A run that changes the revision (upgrade, downgrade, stamp) holds the migration lock, runs
    its DDL with bounded lock waits, refuses to start while an applied migration changed,
    fences the tables a step archives or restores, and journals every step. A connection
    handed in with a transaction of its caller's open is left in that transaction; otherwise
    every step gets its own (on SQLite, the lock's one exclusive transaction).
    """
    if not changes_revision:
        yield _Unrecorded()
        return
    owned = not connection.in_transaction()
    lock = migration_lock(
        connection,
        timeout_s=settings.migration_lock_timeout_s,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        lease_s=settings.migration_lock_lease_s,
    )

    def before_step(step: Script | None, direction: str) -> None:
        if step is not None and direction != "stamp":
            fence_pending_restores(connection, step.revision)

    with lock, guard_ddl(connection, settings) as guard:
        try:
            journal = Journal(connection, owns_transaction=owned, before_step=before_step)
            ensure_catalog(connection)
            register_untracked(connection)
            if guard is not None:
                guard.applied.clear()  # bookkeeping tables are no part of any migration
            guard_applied_migrations(connection, settings, script, journal)
            if owned and not is_sqlite(connection.dialect):
                connection.commit()  # so Alembic runs each step in a transaction of its own
            with journal.recording_failure():
                yield journal
        finally:
            if not connection.closed and not connection.invalidated:
                release_fence(connection)  # a step that failed before its journal row
