"""Lossless downgrades: keep dropped columns and tables in archive tables, restore them on upgrade.

In a migration, one line before a drop and one line after the matching re-create:

    archive_columns(revision, "user_list", ["email"])   # downgrade, before dropping the column
    restore_columns(revision, "user_list", ["email"])   # upgrade, after adding it back

An archive is a table `migration_archive_<revision>_<table>` holding the key and the dropped
columns (or every column, for a dropped table) with their values as stored. Restoring copies them
back and drops the archive. List or purge archives with `python -m app.migrate archive`.
"""

import hashlib
from collections.abc import Sequence

from alembic import context, op
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text

from app.backend import is_mysql
from app.config import get_settings
from app.migrate.config import ARCHIVE_PREFIX, is_archive_table

MAX_NAME = 64  # MySQL's identifier limit


class IrreversibleMigration(CommandError):
    """A migration step that would lose data, refused unless explicitly allowed."""


def archive_name(revision: str, table: str) -> str:
    name = f"{ARCHIVE_PREFIX}{revision}_{table}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def _quote(name: str) -> str:
    return op.get_context().dialect.identifier_preparer.quote(name)


def _copy_into_archive(archive: str, source: str, columns: Sequence[str], key: str) -> None:
    # CREATE TABLE ... AS SELECT keeps each column's exact type (and charset/collation on
    # MySQL), so what comes back is byte-identical. A stale archive of the same step (left by a
    # downgrade that gave up before its drop) is replaced: the live data is the truth.
    a, s = _quote(archive), _quote(source)
    selected = ", ".join(_quote(c) for c in columns) if columns else "*"
    op.execute(f"DROP TABLE IF EXISTS {a}")
    if is_mysql(op.get_context().dialect):
        key_clause = f"(PRIMARY KEY ({_quote(key)}))"
        op.execute(f"CREATE TABLE {a} {key_clause} SELECT {selected} FROM {s}")  # noqa: S608
    else:
        op.execute(f"CREATE TABLE {a} AS SELECT {selected} FROM {s}")  # noqa: S608
        op.execute(f"CREATE UNIQUE INDEX {_quote(archive + '_key')} ON {a} ({_quote(key)})")


def _archive_exists(archive: str) -> bool:
    if context.is_offline_mode():
        op.get_context().impl.static_output(f"-- offline mode: restore from {archive} skipped")
        return False
    return inspect(op.get_bind()).has_table(archive)


def archive_columns(revision: str, table: str, columns: Sequence[str], *, key: str = "id") -> None:
    """Before dropping `columns` of `table`: keep their values, keyed by `key`."""
    _copy_into_archive(archive_name(revision, table), table, [key, *columns], key)


def restore_columns(revision: str, table: str, columns: Sequence[str], *, key: str = "id") -> None:
    """After re-adding `columns`: put back what `archive_columns` kept, then drop the archive."""
    archive = archive_name(revision, table)
    if not _archive_exists(archive):
        return
    a, t, k = _quote(archive), _quote(table), _quote(key)
    sets = ", ".join(
        f"{_quote(c)} = (SELECT a.{_quote(c)} FROM {a} a WHERE a.{k} = {t}.{k})"  # noqa: S608
        for c in columns
    )
    op.execute(f"UPDATE {t} SET {sets} WHERE {k} IN (SELECT {k} FROM {a})")  # noqa: S608
    op.execute(f"DROP TABLE {a}")


def archive_table(revision: str, table: str, *, key: str = "id") -> None:
    """Before dropping `table`: keep all of its rows."""
    columns = (
        []  # offline --sql: no connection to list them, copy every column with *
        if context.is_offline_mode()
        else [c["name"] for c in inspect(op.get_bind()).get_columns(table)]
    )
    _copy_into_archive(archive_name(revision, table), table, columns, key)


def restore_table(revision: str, table: str) -> None:
    """After re-creating `table`: put back the rows `archive_table` kept, then drop the archive."""
    archive = archive_name(revision, table)
    if not _archive_exists(archive):
        return
    inspector = inspect(op.get_bind())
    archived = {c["name"] for c in inspector.get_columns(archive)}
    columns = ", ".join(
        _quote(c["name"]) for c in inspector.get_columns(table) if c["name"] in archived
    )
    a, t = _quote(archive), _quote(table)
    op.execute(f"INSERT INTO {t} ({columns}) SELECT {columns} FROM {a}")  # noqa: S608
    op.execute(f"DROP TABLE {a}")


def refuse_data_loss(revision: str, reason: str) -> None:
    """Call first in a step that cannot be reversed without loss: it refuses unless allowed."""
    if get_settings().migration_allow_data_loss:
        op.get_context().impl.static_output(f"-- {revision}: data loss allowed: {reason}")
        return
    raise IrreversibleMigration(
        f"migration {revision} cannot be reversed without losing data: {reason}. "
        "Set MIGRATION_ALLOW_DATA_LOSS=1 to run it anyway, deliberately."
    )


def list_archives(connection: Connection) -> list[tuple[str, int]]:
    """Every archive table with its row count."""
    names = sorted(n for n in inspect(connection).get_table_names() if is_archive_table(n))
    quote = connection.dialect.identifier_preparer.quote
    return [
        (name, int(connection.execute(text(f"SELECT COUNT(*) FROM {quote(name)}")).scalar_one()))  # noqa: S608
        for name in names
    ]


def purge_archives(connection: Connection, revision: str | None = None) -> list[str]:
    """Drop the archives (of one revision, or all): their data is gone for good."""
    quote = connection.dialect.identifier_preparer.quote
    dropped = []
    for name, _rows in list_archives(connection):
        if revision is None or name.startswith(f"{ARCHIVE_PREFIX}{revision}_"):
            connection.execute(text(f"DROP TABLE {quote(name)}"))
            dropped.append(name)
    connection.commit()
    return dropped
