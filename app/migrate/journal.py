"""The migration journal: one row per migration step run, like Flyway's schema history.

Each row is chained to the one before by a SHA-256 (see `journal_chain`) and records the
checksums of the migration file and of the modules it calls (see `checksums`). Read it with
`python -m app.migrate journal`; `--check` verifies it.
"""

import logging
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    update,
)
from sqlalchemy.schema import CreateColumn

from app.backend import instant_clause, is_mysql
from app.migrate.checksums import file_checksum, script_modules
from app.migrate.config import BOOKKEEPING_TIMESTAMP, JOURNAL_TABLE
from app.migrate.fence import release_fence
from app.migrate.journal_chain import GENESIS, row_digest

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
    Column("started_at", BOOKKEEPING_TIMESTAMP, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("error", Text),
    Column("host", String(255), nullable=False),
    Column("app_version", String(64), nullable=False),
    Column("checksum", String(64)),  # sha256 of the migration file as it ran
    # Added later (see `ensure_journal`): JSON {module: sha256} of the app modules the
    # migration calls, a note (what an override accepted), and the hash chain.
    Column("modules", Text),
    Column("note", Text),
    Column("prev_hash", String(64)),
    Column("row_hash", String(64)),
    mysql_charset="utf8mb4",
)
ADDED_COLUMNS = ("modules", "note", "prev_hash", "row_hash")


def ensure_journal(connection: Connection) -> None:
    """Create the journal, or add the columns a journal made by older code lacks.

    Rows written before the hash chain existed are sealed into it as they stand when the
    columns are added: from then on, a change to any of them is detected.
    """
    journal_table.create(connection, checkfirst=True)
    present = {c["name"] for c in inspect(connection).get_columns(JOURNAL_TABLE)}
    missing = [journal_table.c[name] for name in ADDED_COLUMNS if name not in present]
    if not missing:
        return
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    added = [str(CreateColumn(column).compile(dialect=dialect)) for column in missing]
    if is_mysql(dialect):  # one statement, no table copy
        clauses = ", ".join(f"ADD COLUMN {a}" for a in added)
        connection.exec_driver_sql(
            f"ALTER TABLE {quote(JOURNAL_TABLE)} {clauses}{instant_clause(dialect)}"
        )
    else:
        for a in added:
            connection.exec_driver_sql(f"ALTER TABLE {quote(JOURNAL_TABLE)} ADD COLUMN {a}")
    seal(connection)


def seal(connection: Connection) -> None:
    """Chain every row as it stands (rows written before the chain existed)."""
    prev_hash = GENESIS
    for row in read_journal(connection):
        row_hash = row_digest(row, prev_hash)
        connection.execute(
            update(journal_table)
            .where(journal_table.c.id == row["id"])
            .values(prev_hash=prev_hash, row_hash=row_hash)
        )
        prev_hash = row_hash


def last_hash(connection: Connection) -> str:
    """The hash the next row chains to."""
    query = select(journal_table.c.row_hash).order_by(journal_table.c.id.desc()).limit(1)
    found = connection.execute(query).first()
    return GENESIS if found is None or not found[0] else str(found[0])


def append(connection: Connection, values: dict[str, Any]) -> None:
    """Insert one journal row, chained to the last."""
    row = {c.name: values.get(c.name) for c in journal_table.c if c.name != "id"}
    prev_hash = last_hash(connection)
    row["prev_hash"] = prev_hash
    row["row_hash"] = row_digest(row, prev_hash)
    connection.execute(journal_table.insert().values(**row))


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


StepStart = Callable[[Script | None, str], None]


class Journal:
    """Records each step of one Alembic run; see `follow` and `recording_failure`.

    `before_step(script, direction)` runs as each step is about to start. A step's write
    fence (see `fence`) ends once its journal row is written, or when it fails.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        owns_transaction: bool,
        before_step: StepStart | None = None,
    ) -> None:
        self.connection = connection
        self.owns_transaction = owns_transaction
        self.before_step = before_step
        self.current: _Step | None = None
        ensure_journal(connection)

    def options(self) -> dict[str, Any]:
        """What `context.configure` needs to call the journal after each step."""
        return {"on_version_apply": self.on_version_apply}

    def follow(self, migration_context: MigrationContext) -> None:
        """Note when each step starts (Alembic only reports when one has ended)."""
        # No public hook for a step's start: wrap the private iterator of steps that
        # run_migrations walks (pyproject bounds alembic below 2; tests/migrations/
        # test_journal.py fails if the attribute goes). Without it a failed step would go
        # unjournaled and a restore would start unfenced, so its absence is an error.
        if not hasattr(migration_context, "_migrations_fn"):
            raise RuntimeError(
                "this Alembic has no MigrationContext._migrations_fn: the journal cannot see "
                "steps start; install the alembic version pyproject.toml names"
            )
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
                if self.before_step is not None:
                    self.before_step(self.current.script, direction)
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
        release_fence(self.connection)  # UNLOCK TABLES commits the version update and this row

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
                    release_fence(self.connection)
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
        append(
            self.connection,
            {
                "revision": script.revision
                if script
                else ("base" if direction == "stamp" else "?"),
                "direction": direction,
                "started_at": step.started_at,
                "duration_ms": int((time.monotonic() - step.started) * 1000),
                "success": success,
                "error": error,
                "host": socket.gethostname()[:255],
                "app_version": app_version()[:64],
                "checksum": file_checksum(script.path if script else None),
                "modules": None if direction == "stamp" else script_modules(script),
            },
        )

    def record_override(
        self, revision: str, checksum: str | None, modules: str | None, note: str
    ) -> None:
        """Journal that MIGRATION_ALLOW_EDITED=1 accepted an applied revision as it is now."""
        append(
            self.connection,
            {
                "revision": revision,
                "direction": "override",
                "started_at": datetime.now(UTC).replace(tzinfo=None),
                "duration_ms": 0,
                "success": True,
                "host": socket.gethostname()[:255],
                "app_version": app_version()[:64],
                "checksum": checksum,
                "modules": modules,
                "note": note,
            },
        )


def read_journal(connection: Connection, limit: int | None = None) -> list[dict[str, Any]]:
    """The journal's rows, oldest first (the last `limit` when given)."""
    inspector = inspect(connection)
    if not inspector.has_table(JOURNAL_TABLE):
        return []
    # A journal made by older code lacks the later columns until the next migration run.
    present = {c["name"] for c in inspector.get_columns(JOURNAL_TABLE)}
    columns = [c for c in journal_table.c if c.name in present]
    query = select(*columns).order_by(journal_table.c.id.desc())
    if limit:
        query = query.limit(limit)
    rows = [dict(r._mapping) for r in reversed(connection.execute(query).all())]
    for row in rows:
        for name in ADDED_COLUMNS:
            row.setdefault(name, None)
    return rows


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
        if r.get("note"):
            lines.append(f"        note: {r['note']}")
    return "\n".join(lines)
