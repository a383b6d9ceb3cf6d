"""Hold writers off the tables a migration step copies, from the copy until the step commits.

An archive copy and the DROP after it must see the same rows: a write acknowledged between them
would be dropped with the column without ever reaching the archive. On MySQL/MariaDB every DDL
statement commits on its own, so no transaction can span the copy and the drop; the step takes
`LOCK TABLES ... WRITE` on the table and its archive (plus the bookkeeping tables the step
writes) instead, and `release_fence` ends it with `UNLOCK TABLES` once the step's alembic_version
update and journal row are written, which commits them. `LOCK TABLES` waits for its metadata
locks like a DDL statement, so the DDL guard bounds and retries it the same way. On SQLite the
whole run is one exclusive transaction, so there is nothing to add.

Galera: `LOCK TABLES` is not replicated (MariaDB lists it among Galera's unsupported explicit
locks), so the fence holds off only writers connected to the migrating node. A write through
another node between the copy and the DROP can still be lost; until that is addressed, send the
app's writes to the migrating node (or pause them) while a step archives or restores a table.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from alembic.util import CommandError
from sqlalchemy import Connection, bindparam, text

from app.backend import is_mysql
from app.migrate.config import CATALOG_TABLE, JOURNAL_TABLE, VERSION_TABLE

logger = logging.getLogger(__name__)

FENCE_KEY = "app.migrate.fence"
# Written by every fenced step: Alembic's version row, the journal row, the archive register.
BOOKKEEPING = (VERSION_TABLE, JOURNAL_TABLE, CATALOG_TABLE)


class FenceError(CommandError):
    """A step asked to fence more tables than it already holds: MySQL cannot add to a lock."""


@dataclass(frozen=True)
class Fence:
    """The tables one step holds locked: written ones, and ones it only reads."""

    write: frozenset[str]
    read: frozenset[str]

    def covers(self, write: Iterable[str], read: Iterable[str] = ()) -> bool:
        return set(write) <= self.write and set(read) <= self.write | self.read


def held_fence(connection: Connection) -> Fence | None:
    fence = connection.info.get(FENCE_KEY)
    return fence if isinstance(fence, Fence) else None


def existing_tables(connection: Connection, names: Iterable[str]) -> set[str]:
    """Which of `names` exist (information_schema: also readable while tables are locked)."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    query = text(
        "SELECT TABLE_NAME FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names"
    ).bindparams(bindparam("names", expanding=True))
    return {str(n) for n in connection.execute(query, {"names": wanted}).scalars()}


def hold_writers_off(
    connection: Connection, tables: Iterable[str], *, read_only: Iterable[str] = ()
) -> None:
    """Lock `tables` against every other session until `release_fence` (MySQL/MariaDB only).

    `read_only` tables are locked for reading (others may still read them, nobody writes).
    A step that already holds a fence covering these tables keeps it; one that would need more
    is refused: `LOCK TABLES` first releases what a session holds, which would open a gap.
    """
    if not is_mysql(connection.dialect):
        return
    wanted = list(dict.fromkeys(tables))
    write, read = set(wanted), set(read_only) - set(wanted)
    held = held_fence(connection)
    if held is not None:
        if held.covers(write, read):
            return
        raise FenceError(
            f"this migration step already holds {sorted(held.write)} locked and now needs "
            f"{sorted(write | read)} too: on MySQL a step can archive or restore one table "
            "(with the tables it refers to); split the others into revisions of their own"
        )
    present = existing_tables(connection, write | read | set(BOOKKEEPING))
    write_locked = (write | set(BOOKKEEPING)) & present
    read_locked = read & present
    quote = connection.dialect.identifier_preparer.quote
    # The step's own tables first: a give-up message names the blockers of the first one.
    ordered = [t for t in wanted if t in present]
    ordered += sorted(t for t in write_locked if t not in ordered)
    clauses = [f"{quote(t)} WRITE" for t in ordered]
    clauses += [f"{quote(t)} READ" for t in sorted(read_locked)]
    connection.exec_driver_sql("LOCK TABLES " + ", ".join(clauses))
    connection.info[FENCE_KEY] = Fence(frozenset(write_locked), frozenset(read_locked))
    logger.info("holding writers off %s until this step commits", ", ".join(sorted(write)))


def release_fence(connection: Connection) -> bool:
    """End the step's fence: `UNLOCK TABLES`, which also commits what the step wrote."""
    if connection.info.pop(FENCE_KEY, None) is None:
        return False
    connection.exec_driver_sql("UNLOCK TABLES")
    return True
