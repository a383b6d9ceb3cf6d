"""Data migrations in batches: fill a derived column where it is NULL, a bounded batch at a time.

Each batch is one UPDATE statement (`SET col = CASE id WHEN ... END WHERE id IN (...) AND col IS
NULL`), so it is atomic on its own. Inside a migration, `batch_commits` makes each of them commit
on MySQL/MariaDB; a killed run keeps the batches it finished, and the next run, which only reads
rows whose column is still NULL, carries on from there. On SQLite the whole migration is one
exclusive transaction (app.migrate.lock): the batches bound memory, and a kill undoes them all.
"""

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, case, column, func, select, table, update
from sqlalchemy.exc import IntegrityError

from app.backend import is_mysql

PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class Backfill:
    """`target` of `table_name` is `compute(*sources)` of the same row; `key` orders batches."""

    table_name: str
    target: str
    sources: tuple[str, ...]
    compute: Callable[..., str]
    key: str = "id"


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def batch_commits(migration: MigrationContext) -> Iterator[None]:
    """In a revision: make each statement of the body commit on its own, where that is safe.

    On MySQL/MariaDB Alembic's autocommit block (on the migration's own connection, so the
    migration lock and the DDL guard's session settings stay) commits what the step did so far,
    which is only its DDL, and runs the body in autocommit. A connection handed in inside a
    transaction of its caller's, and SQLite's one exclusive transaction, are left alone.
    """
    # Alembic's own flag for "the caller owns the transaction": no public accessor exists.
    external = getattr(migration, "_in_external_transaction", True)
    if is_mysql(migration.dialect) and not external:
        with migration.autocommit_block():
            yield
    else:
        yield


def run_backfill(
    connection: Connection,
    job: Backfill,
    *,
    batch_size: int,
    pause_s: float = 0.0,
    commit: Callable[[], None] | None = None,
    on_conflict: Callable[[Mapping[object, str]], None] | None = None,
    report: Callable[[str], None] = _print,
) -> int:
    """Fill `job.target` where it is NULL, `batch_size` rows per UPDATE; return rows filled.

    `commit` is called after each batch where the caller's connection does not autocommit.
    `on_conflict(values)` is called when a batch breaks a unique index, and should raise.
    Progress (rows done of total, rate) goes to `report`: the first batch, every few seconds,
    the last.
    """
    rows = table(job.table_name, column(job.key), column(job.target), *map(column, job.sources))
    key, target = rows.c[job.key], rows.c[job.target]
    pending = target.is_(None)
    total = connection.execute(select(func.count()).select_from(rows).where(pending)).scalar_one()
    name = f"{job.table_name}.{job.target}"
    if commit is not None:
        commit()  # end the read's transaction: nothing else of ours may stay open meanwhile
    started = last_report = time.monotonic()
    done, last_key = 0, None
    while True:
        query = select(key, *(rows.c[s] for s in job.sources)).where(pending)
        if last_key is not None:
            query = query.where(key > last_key)
        batch = connection.execute(query.order_by(key).limit(batch_size)).all()
        if not batch:
            break
        values = {row[0]: job.compute(*row[1:]) for row in batch}
        try:
            _write_batch(connection, job, values)
        except IntegrityError:
            if on_conflict is None:
                raise
            if commit is not None:
                connection.rollback()
            on_conflict(values)
            raise
        if commit is not None:
            commit()
        done += len(batch)
        last_key = batch[-1][0]
        now = time.monotonic()
        if done == len(batch) or now - last_report >= PROGRESS_EVERY_S:
            report(_progress(name, done, total, now - started))
            last_report = now
        if pause_s:
            time.sleep(pause_s)
    if done:
        report(_progress(name, done, total, time.monotonic() - started) + ": done")
    return done


def _write_batch(connection: Connection, job: Backfill, values: Mapping[object, str]) -> None:
    """One UPDATE: `SET target = CASE key WHEN .. THEN .. END WHERE key IN (..) AND target IS NULL`.

    Written as driver SQL: compiling the same statement with SQLAlchemy costs more than running
    it (some 50 ms for 1,000 rows), and the statement is simple enough to spell out.
    """
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(connection.dialect.paramstyle)
    if mark is None:  # another driver: let SQLAlchemy render it
        rows = table(job.table_name, column(job.key), column(job.target))
        key, target = rows.c[job.key], rows.c[job.target]
        connection.execute(
            update(rows)
            .where(key.in_(list(values)), target.is_(None))
            .values({job.target: case(dict(values), value=key)})
        )
        return
    quote = connection.dialect.identifier_preparer.quote
    table_name, key_name, target_name = quote(job.table_name), quote(job.key), quote(job.target)
    whens = " ".join([f"WHEN {mark} THEN {mark}"] * len(values))
    members = ", ".join([mark] * len(values))
    statement = (
        f"UPDATE {table_name} SET {target_name} = CASE {key_name} {whens} END "  # noqa: S608
        f"WHERE {key_name} IN ({members}) AND {target_name} IS NULL"
    )
    parameters = (*(x for pair in values.items() for x in pair), *values)
    connection.exec_driver_sql(statement, parameters)


def _progress(name: str, done: int, total: int, elapsed_s: float) -> str:
    # Rows written meanwhile by the previous release count too: the total grows with them.
    total = max(total, done)
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"backfill {name}: {done} of {total} rows ({100 * done // max(total, 1)}%), "
        f"{rate:,.0f} rows/s, {elapsed_s:.1f} s"
    )
