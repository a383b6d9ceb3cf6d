"""How long archived data lives: list archives with their age, purge them, forget a user's rows.

Archives hold personal data (emails, password hashes) of rows a downgrade dropped. They are kept
`ARCHIVE_MAX_AGE_DAYS` for the next upgrade to put back, then purged by `python -m app.migrate
archive purge --expired --yes`; deleting a user deletes their archived rows in the same
transaction (`forget_archived_rows`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.backend import is_mysql
from app.migrate.capture import drop_capture
from app.migrate.catalog import (
    ArchiveEntry,
    end_archive,
    live_entries,
    utcnow,
)
from app.migrate.config import ARCHIVE_PREFIX, CATALOG_TABLE, is_archive_table


@dataclass(frozen=True)
class ArchiveInfo:
    name: str
    rows: int
    created_at: datetime | None
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def list_archives(connection: Connection, max_age_days: int) -> list[ArchiveInfo]:
    """Every archive table with its row count, creation time and expiry."""
    tables = inspect(connection).get_table_names()
    names = sorted(n for n in tables if is_archive_table(n))
    # No register yet (a database no migration of this code has run on): ages unknown.
    entries = {e.archive: e for e in live_entries(connection)} if CATALOG_TABLE in tables else {}
    quote = connection.dialect.identifier_preparer.quote
    found = []
    for name in names:
        query = text(f"SELECT COUNT(*) FROM {quote(name)}")  # noqa: S608 (a quoted name)
        rows = int(connection.execute(query).scalar_one())
        entry = entries.get(name)
        created = entry.created_at if entry else None
        expires = created + timedelta(days=max_age_days) if created else None
        found.append(ArchiveInfo(name, rows, created, expires))
    return found


def purge_archives(
    connection: Connection,
    *,
    max_age_days: int,
    revision: str | None = None,
    expired_only: bool = False,
) -> list[str]:
    """Drop archives (all, one revision's, or the expired ones): their data is gone for good.

    Their register entries stay, marked purged, with the ids they saw (see `catalog`).
    """
    quote = connection.dialect.identifier_preparer.quote
    now = utcnow()
    entries = {e.archive: e for e in live_entries(connection)}
    dropped = []
    for archive in list_archives(connection, max_age_days):
        if revision is not None and not _made_by(archive.name, entries.get(archive.name), revision):
            continue
        if expired_only and not archive.expired(now):
            continue
        if is_mysql(connection.dialect):
            drop_capture(connection, archive.name)  # else they would fail every write
        connection.execute(text(f"DROP TABLE {quote(archive.name)}"))
        end_archive(connection, archive.name, "purged")
        dropped.append(archive.name)
    connection.commit()
    return dropped


def _made_by(name: str, entry: ArchiveEntry | None, revision: str) -> bool:
    if entry is not None:
        return entry.revision == revision
    return name.startswith(f"{ARCHIVE_PREFIX}{revision}_")


def delete_archived_rows(connection: Connection, table: str, column: str, value: object) -> int:
    """Delete, from every archive, the rows that belong to the row of `table` whose key
    `column` is `value`; returns how many went.

    An archived row belongs to it when its archive's register entry says one of its columns
    refers to `table`.`column`: the archive of a dropped column of `table`, of `table` itself,
    or of a table with a foreign key to it.
    """
    present = set(inspect(connection).get_table_names())
    if CATALOG_TABLE not in present:
        return 0
    quote = connection.dialect.identifier_preparer.quote
    deleted = 0
    for entry, archived in _columns_referring(live_entries(connection), table, column):
        if entry.archive not in present:
            continue
        result = connection.execute(
            text(f"DELETE FROM {quote(entry.archive)} WHERE {quote(archived)} = :value"),  # noqa: S608
            {"value": value},
        )
        deleted += int(result.rowcount)
    return deleted


def _columns_referring(
    entries: Iterable[ArchiveEntry], table: str, key: str
) -> Iterable[tuple[ArchiveEntry, str]]:
    for entry in entries:
        for column, (referred_table, referred_column) in entry.refers.items():
            if (referred_table, referred_column) == (table, key):
                yield entry, column


async def forget_archived_rows(
    session: AsyncSession, *, table: str, column: str, value: object
) -> int:
    """`delete_archived_rows` in the session's transaction (the app's delete calls it)."""
    return await session.run_sync(
        lambda sync_session: delete_archived_rows(sync_session.connection(), table, column, value)
    )
