"""The register of archives: when each was made, what its rows refer to, the ids it saw.

One row per archive a downgrade (or a contract upgrade) made. A row stays after its archive is
restored or purged, with `ended_at` set: it keeps the source table's id high-water mark, so a
table re-created even after its archive was purged never hands out an archived id again, and it
says what was deleted when. Like the journal it is bookkeeping, created on first use.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import Connection, func, inspect, select, text, update

from app.migrate.config import (
    ARCHIVE_PREFIX,
    BOOKKEEPING_TIMESTAMP,
    CATALOG_TABLE,
    is_archive_table,
)

catalog_table = sa.Table(
    CATALOG_TABLE,
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("archive", sa.String(64), nullable=False),
    sa.Column("revision", sa.String(64), nullable=False),
    sa.Column("source_table", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # columns | table | unknown (found, not made)
    # JSON {archive column: [table, column]}: which rows of which table each archived row
    # belongs to (its key, and its foreign keys): what deleting a user must reach.
    sa.Column("refers", sa.Text, nullable=False),
    sa.Column("next_id", sa.BigInteger),  # the source table's next id when it was archived
    sa.Column("created_at", BOOKKEEPING_TIMESTAMP),
    sa.Column("ended_at", BOOKKEEPING_TIMESTAMP),
    sa.Column("ended", sa.String(10)),  # restored | purged | replaced
    mysql_charset="utf8mb4",
)

References = Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class ArchiveEntry:
    archive: str
    revision: str
    source_table: str
    kind: str
    refers: dict[str, tuple[str, str]]
    created_at: datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_catalog(connection: Connection) -> None:
    catalog_table.create(connection, checkfirst=True)


def record_archive(
    connection: Connection,
    *,
    archive: str,
    revision: str,
    source_table: str,
    kind: str,
    refers: References,
    next_id: int | None,
) -> None:
    """Register a new archive (ending the entry of a stale one it replaced)."""
    end_archive(connection, archive, "replaced")
    connection.execute(
        catalog_table.insert().values(
            archive=archive,
            revision=revision,
            source_table=source_table,
            kind=kind,
            refers=json.dumps({c: list(r) for c, r in refers.items()}),
            next_id=next_id,
            created_at=utcnow(),
        )
    )


def end_archive(connection: Connection, archive: str, how: str) -> None:
    """The archive was restored, purged or replaced: keep its entry, mark it ended."""
    connection.execute(
        update(catalog_table)
        .where(catalog_table.c.archive == archive, catalog_table.c.ended_at.is_(None))
        .values(ended_at=utcnow(), ended=how)
    )


def live_entries(connection: Connection) -> list[ArchiveEntry]:
    """The archives that exist, oldest first."""
    query = (
        select(catalog_table).where(catalog_table.c.ended_at.is_(None)).order_by(catalog_table.c.id)
    )
    return [
        ArchiveEntry(
            archive=r.archive,
            revision=r.revision,
            source_table=r.source_table,
            kind=r.kind,
            refers={c: (t, k) for c, (t, k) in json.loads(r.refers).items()},
            created_at=r.created_at,
        )
        for r in connection.execute(query)
    ]


def high_water_mark(connection: Connection, table: str) -> int | None:
    """The highest next id `table` ever had when one of its archives was made."""
    query = select(func.max(catalog_table.c.next_id)).where(catalog_table.c.source_table == table)
    found = connection.execute(query).scalar()
    return int(found) if found is not None else None


def register_untracked(connection: Connection) -> list[str]:
    """Register archive tables nobody registered (made by older code, or by an offline script).

    Their age starts now, and each row is taken to belong to the row of the same key in the
    table the name gives.
    """
    inspector = inspect(connection)
    tracked = {e.archive for e in live_entries(connection)}
    found = []
    for name in sorted(n for n in inspector.get_table_names() if is_archive_table(n)):
        if name in tracked:
            continue
        revision, _, table = name[len(ARCHIVE_PREFIX) :].partition("_")
        key = _key_of(connection, name)
        quote = connection.dialect.identifier_preparer.quote
        query = f"SELECT MAX({quote(key)}) FROM {quote(name)}"  # noqa: S608 (quoted names)
        highest = connection.execute(text(query)).scalar()  # the best mark there is
        record_archive(
            connection,
            archive=name,
            revision=revision,
            source_table=table,
            kind="unknown",
            refers={key: (table, key)},
            next_id=int(highest) + 1 if isinstance(highest, int) else None,
        )
        found.append(name)
    return found


def _key_of(connection: Connection, archive: str) -> str:
    inspector = inspect(connection)
    primary = inspector.get_pk_constraint(archive).get("constrained_columns") or []
    if primary:
        return str(primary[0])
    for index in inspector.get_indexes(archive):  # SQLite archives: a unique index on the key
        if index["unique"] and len(index["column_names"]) == 1:
            return str(index["column_names"][0])
    return str(inspector.get_columns(archive)[0]["name"])
