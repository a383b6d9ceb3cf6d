"""`alembic revision --autogenerate`, safe by default: generated drops archive, adds restore.

`rewrite_lossless` (a `process_revision_directives` step) replaces what autogenerate emits for
adding and dropping columns and tables with the helpers of `app.migrate.lossless`, in both
directions, so the tutorial's workflow (change the model, generate, upgrade, downgrade when it
goes wrong) loses nothing. The generated file stays plain Alembic apart from those calls, each
with a comment saying what it keeps.

`compare_table_options` makes `alembic check` (and autogenerate) see what Alembic's own
comparison misses: a SQLite table that lost `AUTOINCREMENT` (a batch copy rebuilds tables from
reflection) and a MySQL/MariaDB table whose collation is not the model's.
"""

from collections.abc import Iterable
from typing import Any

from alembic.autogenerate import comparators, render_op_text, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import MigrateOperation, ops
from sqlalchemy import Table, text

from app.backend import is_mysql, is_sqlite

IMPORT = "from app.migrate import lossless"


class LosslessOp(MigrateOperation):
    """An add/create or drop of a column or table, rendered as a `lossless.*` call."""

    def __init__(self, original: MigrateOperation) -> None:
        self.original = original

    def reverse(self) -> "LosslessOp":
        return LosslessOp(self.original.reverse())


CALLS = {
    ops.AddColumnOp: ("op.add_column(", "lossless.add_column(revision, "),
    ops.DropColumnOp: ("op.drop_column(", "lossless.drop_column(revision, "),
    ops.CreateTableOp: ("op.create_table(", "lossless.create_table(revision, "),
    ops.DropTableOp: ("op.drop_table(", "lossless.drop_table(revision, "),
}
COMMENTS = {
    ops.AddColumnOp: "adds the column (no table copy) and restores what a drop archived",
    ops.DropColumnOp: "archives the column's values first; adding it back restores them",
    ops.CreateTableOp: "creates the table and restores the rows (and ids) a drop archived",
    ops.DropTableOp: "archives every row first; creating it back restores them",
}


@renderers.dispatch_for(LosslessOp)
def _render(autogen_context: AutogenContext, op: LosslessOp) -> list[str]:
    autogen_context.imports.add(IMPORT)
    plain, lossless = CALLS[type(op.original)]
    rendered = render_op_text(autogen_context, op.original)
    return [f"# lossless: {COMMENTS[type(op.original)]}", rendered.replace(plain, lossless, 1)]


def _rewritten(operations: Iterable[MigrateOperation]) -> list[MigrateOperation]:
    """`operations` with adds and drops made lossless; those inside a batch block come out of
    it (they need no table copy), the rest of the block stays."""
    out: list[MigrateOperation] = []
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps):
            hoisted = [o for o in operation.ops if _top_level(o)]
            kept = [o for o in operation.ops if not _top_level(o)]
            out.extend(
                o if isinstance(o, RestoreTableOptionsOp) else LosslessOp(o) for o in hoisted
            )
            if kept:
                operation.ops = kept
                out.append(KeptOptionsBatch(operation))
        elif _top_level(operation):
            out.append(_lossless(operation))
        else:
            out.append(operation)
    return out


class KeptOptionsBatch(MigrateOperation):
    """The rest of a table's batch block (SQLite), run by a batch that keeps AUTOINCREMENT."""

    def __init__(self, inner: ops.ModifyTableOps) -> None:
        self.inner = inner

    def reverse(self) -> "KeptOptionsBatch":
        return KeptOptionsBatch(self.inner.reverse())

    def to_diff_tuple(self) -> Any:
        return self.inner.to_diff_tuple()


BATCH = "with op.batch_alter_table("


@renderers.dispatch_for(KeptOptionsBatch)
def _render_batch(autogen_context: AutogenContext, op: KeptOptionsBatch) -> list[str]:
    lines = render_op_text(autogen_context, op.inner).split("\n")
    if not lines or not lines[0].startswith(BATCH):
        return lines  # not a batch (MySQL): the ops as Alembic wrote them
    autogen_context.imports.add(IMPORT)
    return [
        "# lossless: a batch copy of the table that keeps its AUTOINCREMENT (Alembic's forgets it)",
        lines[0].replace(BATCH, "with lossless.batch_alter_table(", 1),
        *lines[1:],
    ]


def _lossless(operation: MigrateOperation) -> MigrateOperation:
    return operation if isinstance(operation, RestoreTableOptionsOp) else LosslessOp(operation)


def _top_level(operation: MigrateOperation) -> bool:
    return type(operation) in CALLS or isinstance(operation, RestoreTableOptionsOp)


def rewrite_lossless(directives: Iterable[ops.MigrationScript]) -> None:
    """Make every add and drop of a column or table in the new revisions lossless."""
    for script in directives:
        for container in (*script.upgrade_ops_list, *script.downgrade_ops_list):
            container.ops = _rewritten(container.ops)


class RestoreTableOptionsOp(MigrateOperation):
    """A table whose options drifted from the model's: rebuilt with them (a table copy)."""

    def __init__(self, table: str, problem: str, mysql_collate: str | None = None) -> None:
        self.table, self.problem, self.mysql_collate = table, problem, mysql_collate

    def reverse(self) -> "RestoreTableOptionsOp":
        return self  # the fix is not undone by a downgrade

    def to_diff_tuple(self) -> tuple[str, str, str]:
        return ("table_options", self.table, self.problem)


@renderers.dispatch_for(RestoreTableOptionsOp)
def _render_restore(autogen_context: AutogenContext, op: RestoreTableOptionsOp) -> list[str]:
    autogen_context.imports.add(IMPORT)
    return [
        f"# {op.problem}: rebuilt with the model's options (copies the table; run it when quiet)",
        f"lossless.restore_table_options({op.table!r}, mysql_collate={op.mysql_collate!r})",
    ]


@comparators.dispatch_for("table")
def compare_table_options(
    autogen_context: AutogenContext,
    modify_ops: ops.ModifyTableOps,
    _schema: str | None,
    name: str,
    conn_table: Table | None,
    metadata_table: Table | None,
) -> None:
    """Flag a table that lost AUTOINCREMENT (SQLite) or its collation (MySQL/MariaDB)."""
    if conn_table is None or metadata_table is None or autogen_context.connection is None:
        return
    connection = autogen_context.connection
    problem, collate = None, None
    if is_sqlite(connection.dialect) and metadata_table.dialect_options["sqlite"].get(
        "autoincrement"
    ):
        made_with = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": name},
        ).scalar()
        if "AUTOINCREMENT" not in (made_with or "").upper():
            problem = f"{name} lost AUTOINCREMENT, so SQLite may hand out a deleted row's id again"
    elif is_mysql(connection.dialect):
        wanted = collate = metadata_table.dialect_options["mysql"].get("collate")
        if wanted:
            found = _mysql_collations(connection, name) - {wanted}
            if found:
                problem = f"{name} has collation {', '.join(sorted(found))}, the model {wanted}"
    if problem:
        modify_ops.ops.append(RestoreTableOptionsOp(name, problem, collate))


def _mysql_collations(connection: Any, table: str) -> set[str]:
    """The table's default collation and those of its text columns."""
    rows = connection.execute(
        text(
            "SELECT TABLE_COLLATION FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t "
            "UNION SELECT COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND COLLATION_NAME IS NOT NULL"
        ),
        {"t": table},
    )
    return {row[0] for row in rows}
