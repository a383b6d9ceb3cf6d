"""A table's id high-water mark: read it before the table is dropped, restore it on re-create.

Archives are keyed by id. A dropped and re-created table would otherwise number its rows from
the highest id restored (or from 1), and hand a deleted user's id, and with it their archived
data, to a newcomer.
"""

import logging

from sqlalchemy import Connection, text

from app.backend import is_mysql, is_sqlite

logger = logging.getLogger(__name__)


def next_id(connection: Connection, table: str, key: str) -> int | None:
    """The id `table` would hand out next, or None if it numbers nothing itself."""
    quote = connection.dialect.identifier_preparer.quote
    counter: int | None = None
    if is_mysql(connection.dialect):
        found = connection.execute(
            text(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": table},
        ).scalar()
        counter = int(found) if found is not None else None
    elif is_sqlite(connection.dialect) and _has_sqlite_sequence(connection):
        seq = connection.execute(
            text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}
        ).scalar()
        counter = int(seq) + 1 if seq is not None else None
    # Rows may hold ids above the counter (inserted with explicit ids): never go below them.
    highest = connection.execute(text(f"SELECT MAX({quote(key)}) FROM {quote(table)}")).scalar()  # noqa: S608
    above_rows = int(highest) + 1 if isinstance(highest, int) else None
    candidates = [n for n in (counter, above_rows) if n is not None]
    return max(candidates) if candidates else None


def keep_ids_from(connection: Connection, table: str, first_id: int) -> None:
    """Make the re-created `table` hand out ids from `first_id` on (or higher), never lower."""
    quote = connection.dialect.identifier_preparer.quote
    if is_mysql(connection.dialect):
        # InnoDB never sets the counter below MAX(id) + 1, so this only ever raises it.
        connection.exec_driver_sql(f"ALTER TABLE {quote(table)} AUTO_INCREMENT = {int(first_id)}")
        return
    if is_sqlite(connection.dialect) and _has_sqlite_sequence(connection):
        autoincrement = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}
        ).scalar()
        if autoincrement and "AUTOINCREMENT" in str(autoincrement).upper():
            last = int(first_id) - 1
            connection.execute(
                text(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT :t, :s WHERE NOT EXISTS "
                    "(SELECT 1 FROM sqlite_sequence WHERE name = :t)"
                ),
                {"t": table, "s": last},
            )
            connection.execute(
                text("UPDATE sqlite_sequence SET seq = :s WHERE name = :t AND seq < :s"),
                {"t": table, "s": last},
            )
            return
    logger.warning(
        "%s does not number its ids with a counter this code can set (SQLite needs "
        "AUTOINCREMENT): ids below %d may be handed out again",
        table,
        first_id,
    )


def _has_sqlite_sequence(connection: Connection) -> bool:
    # SQLite creates sqlite_sequence with the first AUTOINCREMENT table.
    query = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
    return connection.execute(query).first() is not None
