"""The migration journal: one row per migration step run, like Flyway's schema history.

Read it with `python -m app.migrate journal` (add `--check` to exit 1 when an applied
migration's file was edited after it ran).
"""

import hashlib
import logging
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
)
from sqlalchemy.dialects import mysql

from app.migrate.config import JOURNAL_TABLE

ERROR_MAX = 2000

logger = logging.getLogger(__name__)

# Its own MetaData: the journal is bookkeeping, not part of the service's schema, so it is
# created on first use and never appears in a migration or an autogenerate diff.
journal_table = Table(
    JOURNAL_TABLE,
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("revision", String(64), nullable=False),
    Column("direction", String(10), nullable=False),  # upgrade | downgrade | stamp
    Column(
        "started_at",
        DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
        nullable=False,
    ),
    Column("duration_ms", Integer, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("error", Text),
    Column("host", String(255), nullable=False),
    Column("app_version", String(64), nullable=False),
    Column("checksum", String(64)),  # sha256 of the migration file as it ran
    mysql_charset="utf8mb4",
)


def file_checksum(path: str | Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def app_version() -> str:
    try:
        return metadata.version("user-service")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class _Step:
    script: Script | None
    direction: str
    started_at: datetime
    started: float


class Journal:
    """Records each step of one Alembic run; see `follow` and `recording_failure`."""

    def __init__(self, connection: Connection, *, owns_transaction: bool) -> None:
        self.connection = connection
        self.owns_transaction = owns_transaction
        self.current: _Step | None = None
        journal_table.create(connection, checkfirst=True)

    def options(self) -> dict[str, Any]:
        """What `context.configure` needs to call the journal after each step."""
        return {"on_version_apply": self.on_version_apply}

    def follow(self, migration_context: MigrationContext) -> None:
        """Note when each step starts (Alembic only reports when one has ended)."""
        # No public hook for a step's start: wrap the private iterator of steps that
        # run_migrations walks; without it, failures are still raised, just not journaled.
        steps_of = migration_context._migrations_fn
        if steps_of is None:
            return

        def timed(heads: Any, ctx: MigrationContext) -> Iterator[Any]:
            for step in steps_of(heads, ctx):
                direction = "upgrade" if getattr(step, "is_upgrade", True) else "downgrade"
                if getattr(step, "is_stamp", False) or type(step).__name__ == "StampStep":
                    direction = "stamp"
                script = getattr(step, "revision", None)
                self.current = _Step(
                    script if isinstance(script, Script) else None,
                    direction,
                    datetime.now(UTC).replace(tzinfo=None),
                    time.monotonic(),
                )
                yield step

        migration_context._migrations_fn = timed

    def on_version_apply(self, *, step: MigrationInfo, **_kw: Any) -> None:
        """Alembic's callback, inside the step's transaction: the row commits with the step."""
        if step.is_stamp:  # record where the stamp put the database ("base" if nowhere)
            targets = step.destination_revisions
            revision = targets[0] if len(targets) == 1 else None
        else:
            revision = step.up_revision if step.up_revision_ids else None
        script = revision if isinstance(revision, Script) else None
        current = self.current
        direction = "stamp" if step.is_stamp else "upgrade" if step.is_upgrade else "downgrade"
        if current is None:
            now = datetime.now(UTC).replace(tzinfo=None)
            current = _Step(script, direction, now, time.monotonic())
        if step.is_stamp:
            current.script = script
        self._insert(script or current.script, direction, current, success=True, error=None)
        self.current = None

    @contextmanager
    def recording_failure(self) -> Iterator[None]:
        """Journal the step that raised, in its own transaction, then re-raise."""
        try:
            yield
        except BaseException as exc:
            current = self.current
            if current is not None and self.owns_transaction:
                try:
                    if self.connection.in_transaction():
                        self.connection.rollback()
                    error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
                    self._insert(current.script, current.direction, current, False, error)
                    self.connection.commit()
                except Exception:
                    logger.exception("could not journal the failed migration step")
            raise

    def _insert(
        self,
        script: Script | None,
        direction: str,
        step: _Step,
        success: bool,
        error: str | None,
    ) -> None:
        self.connection.execute(
            journal_table.insert().values(
                revision=script.revision if script else ("base" if direction == "stamp" else "?"),
                direction=direction,
                started_at=step.started_at,
                duration_ms=int((time.monotonic() - step.started) * 1000),
                success=success,
                error=error,
                host=socket.gethostname()[:255],
                app_version=app_version()[:64],
                checksum=file_checksum(script.path if script else None),
            )
        )


def read_journal(connection: Connection, limit: int | None = None) -> list[dict[str, Any]]:
    """The journal's rows, oldest first (the last `limit` when given)."""
    if not inspect(connection).has_table(JOURNAL_TABLE):
        return []
    query = select(journal_table).order_by(journal_table.c.id.desc())
    if limit:
        query = query.limit(limit)
    return [dict(r._mapping) for r in reversed(connection.execute(query).all())]


def edited_migrations(rows: Iterable[dict[str, Any]], script: ScriptDirectory) -> list[str]:
    """Warnings for applied migrations whose file changed since they ran."""
    last: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["success"] and row["direction"] in ("upgrade", "downgrade"):
            last[row["revision"]] = row
    warnings = []
    for revision, row in last.items():
        if row["direction"] != "upgrade" or not row["checksum"]:
            continue
        try:
            current = script.get_revision(revision)
        except Exception:
            current = None
        now = file_checksum(current.path) if current is not None else None
        if now is None:
            warnings.append(f"migration {revision} is applied but its file is gone")
        elif now != row["checksum"]:
            warnings.append(
                f"migration {revision} was edited after it was applied on {row['started_at']} "
                f"(checksum {row['checksum'][:12]} then, {now[:12]} now): write a new "
                "migration instead of editing an applied one"
            )
    return warnings


def warn_if_edited(connection: Connection, script: ScriptDirectory) -> list[str]:
    warnings = edited_migrations(read_journal(connection), script)
    for warning in warnings:
        logger.warning("%s", warning)
    return warnings


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"{'id':>4}  {'revision':<8} {'direction':<9} {'started at (UTC)':<26} "
        f"{'ms':>7}  {'result':<6} {'host':<16} {'version':<8} checksum"
    ]
    for r in rows:
        result = "ok" if r["success"] else "FAILED"
        lines.append(
            f"{r['id']:>4}  {r['revision']:<8} {r['direction']:<9} "
            f"{r['started_at'].isoformat(sep=' '):<26} {r['duration_ms']:>7}  {result:<6} "
            f"{r['host'][:16]:<16} {r['app_version'][:8]:<8} {(r['checksum'] or '-')[:12]}"
        )
        if r["error"]:
            lines.append(f"        error: {r['error']}")
    return "\n".join(lines)
