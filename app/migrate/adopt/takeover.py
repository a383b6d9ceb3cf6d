"""From hashed tutorial rows to our schema: set them aside, migrate, copy them back, drop them.

Every step is resumable and finds what an earlier, killed run did: the rows wait in
`tutorial_user_list` until all are copied into the `user_list` our migrations build, and only
then is that table, with the plaintext passwords in it, dropped. It is deliberately not
archived as a downgrade would archive a dropped column: plaintext passwords must not outlive
the adoption anywhere.
"""

import socket
from collections.abc import Callable
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Connection, inspect, text

from app.backend import is_mysql, is_sqlite
from app.migrate.adopt.tutorial import HASH_COLUMN, HELD_TABLE, TABLE
from app.migrate.config import VERSION_TABLE, alembic_config
from app.migrate.journal import app_version, append, ensure_journal
from app.usernames import username_key

ADOPT = "adopt"  # the journal's direction for the row that names the foreign revision


def set_aside(connection: Connection, revision: str, users: int) -> None:
    """Rename the tutorial's table out of our migrations' way, and trade its Flask-Migrate
    revision for a journal row naming it (one transaction, so it is never lost)."""
    if is_mysql(connection.dialect):
        connection.exec_driver_sql(f"RENAME TABLE {TABLE} TO {HELD_TABLE}")
    else:
        connection.exec_driver_sql(f"ALTER TABLE {TABLE} RENAME TO {HELD_TABLE}")
    connection.commit()
    forget_revision(connection, revision, users)


def forget_revision(connection: Connection, revision: str, users: int) -> None:
    ensure_journal(connection)
    connection.commit()
    connection.execute(text(f"DELETE FROM {VERSION_TABLE}"))  # noqa: S608
    append(
        connection,
        {
            "revision": revision[:64],
            "direction": ADOPT,
            "started_at": datetime.now(UTC).replace(tzinfo=None),
            "duration_ms": 0,
            "success": True,
            "host": socket.gethostname()[:255],
            "app_version": app_version()[:64],
            "note": (
                f"Flask-Migrate revision {revision} (the tutorial's database, {users} users) "
                "taken over by `python -m app.migrate adopt`: passwords hashed with argon2id, "
                "this service's migrations applied from base, the plaintext dropped"
            ),
        },
    )
    connection.commit()


def migrate_to_head(database_url: str) -> None:
    """`alembic upgrade head` on the emptied schema: 0001..0005 as on a new database.

    Called outside any event loop (env.py runs its own); resumes a run stopped half-way.
    """
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def copy_users(connection: Connection, *, batch_size: int, report: Callable[[str], None]) -> int:
    """Copy the held users into ours: ids, usernames, emails and hashes kept exactly."""
    has_email = "email" in {c["name"] for c in inspect(connection).get_columns(HELD_TABLE)}
    email = "email" if has_email else "NULL"
    copied = 0
    total = int(connection.execute(text(f"SELECT COUNT(*) FROM {HELD_TABLE}")).scalar_one())  # noqa: S608
    while True:
        # Resumes after the last copied id: copies go in id order, one commit per batch.
        last = connection.execute(text(f"SELECT MAX(id) FROM {TABLE}")).scalar()  # noqa: S608
        rows = connection.execute(
            text(
                f"SELECT id, username, {email}, {HASH_COLUMN} FROM {HELD_TABLE} "  # noqa: S608
                "WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last if last is not None else -1, "n": batch_size},
        ).all()
        if not rows:
            break
        connection.execute(
            text(
                f"INSERT INTO {TABLE} (id, username, username_key, {HASH_COLUMN}, email) "  # noqa: S608
                "VALUES (:id, :username, :key, :hash, :email)"
            ),
            [
                {"id": i, "username": u, "key": username_key(u), "hash": h, "email": e}
                for i, u, e, h in rows
            ],
        )
        connection.commit()
        copied += len(rows)
    if is_mysql(connection.dialect):
        _carry_id_counter(connection)
    report(f"copied {copied} users into {TABLE} ({total} in all)")
    return copied


def _carry_id_counter(connection: Connection) -> None:
    """Ids of users the tutorial deleted stay unused here too (our archives are keyed by id)."""
    query = (
        "SELECT table_name, auto_increment FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name IN (:held, :ours)"
    )
    rows = connection.execute(text(query), {"held": HELD_TABLE, "ours": TABLE}).all()
    counters: dict[str, object] = {str(name): counter for name, counter in rows}
    held, ours = counters.get(HELD_TABLE), counters.get(TABLE)
    if held is not None and (ours is None or int(str(held)) > int(str(ours))):
        connection.exec_driver_sql(f"ALTER TABLE {TABLE} AUTO_INCREMENT = {int(str(held))}")
        connection.commit()


def drop_plaintext(connection: Connection) -> None:
    """Drop the held table and its plaintext passwords: NOT archived, on purpose."""
    connection.exec_driver_sql(f"DROP TABLE {HELD_TABLE}")
    connection.commit()
    if is_sqlite(connection.dialect):
        # Dropped pages keep their bytes until reused: rewrite the file, and empty the WAL.
        connection.exec_driver_sql("VACUUM")
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.commit()
