"""Hash the tutorial's plaintext passwords into a new column, batch by batch, resumably.

The plaintext column stays until every user is copied (`takeover`), so a run killed here can
be retried: the next run hashes only rows whose hash is still NULL, and each UPDATE writes a
row's hash only where it is NULL, so no row is hashed twice. No plaintext is printed, logged
or archived: the progress lines count rows, and errors carry ids and hashes only.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pwdlib import PasswordHash
from sqlalchemy import Connection, text

from app.backend import instant_clause, is_mysql
from app.config import Settings
from app.cpu_limit import available_cpus
from app.hashing import password_hash_from
from app.migrate.adopt.tutorial import HASH_COLUMN, TABLE
from app.passwords import normalize_password

# No password can match it (pwdlib knows no such scheme): for users the tutorial stored
# without a password, who could not log in there either.
UNUSABLE = "!"
PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class Hashed:
    rows: int
    seconds: float


def add_hash_column(connection: Connection) -> None:
    """The nullable column the hashes go to (dropped, with the table, if the run is undone)."""
    if is_mysql(connection.dialect):
        clause = instant_clause(connection.dialect)
        connection.exec_driver_sql(
            f"ALTER TABLE {TABLE} ADD COLUMN {HASH_COLUMN} VARCHAR(255) NULL{clause}"
        )
    else:
        connection.exec_driver_sql(f"ALTER TABLE {TABLE} ADD COLUMN {HASH_COLUMN} VARCHAR(255)")
    connection.commit()


def unhashed(connection: Connection, table: str) -> int:
    query = f"SELECT COUNT(*) FROM {table} WHERE {HASH_COLUMN} IS NULL"  # noqa: S608
    return int(connection.execute(text(query)).scalar_one())


def hash_passwords(
    connection: Connection,
    settings: Settings,
    *,
    batch_size: int,
    pause_s: float,
    report: Callable[[str], None],
) -> Hashed:
    """Fill password_hash where NULL with the service's argon2id, one commit per batch.

    Its own loop rather than `app.migrate.backfill`'s: that computes a batch on one thread,
    and revision 0005 calls it, so a change there would count as an edit of 0005 (checksums).
    """
    scheme = password_hash_from(settings)
    total = unhashed(connection, TABLE)
    connection.commit()
    started = last_report = time.monotonic()
    done, last_id = 0, -1
    # argon2 releases the GIL: one thread per usable CPU hashes a batch in parallel.
    with ThreadPoolExecutor(available_cpus(), thread_name_prefix="adopt-argon2") as pool:
        while True:
            batch = connection.execute(_PENDING, {"last": last_id, "n": batch_size}).all()
            if not batch:
                break
            computed = pool.map(lambda row: _hash(scheme, row[1]), batch)
            # Only where still NULL: a row is never hashed over, whoever wrote it first.
            connection.execute(
                _WRITE, [{"id": row[0], "hash": h} for row, h in zip(batch, computed, strict=True)]
            )
            connection.commit()
            done, last_id = done + len(batch), batch[-1][0]
            now = time.monotonic()
            if done == len(batch) or now - last_report >= PROGRESS_EVERY_S:
                report(_progress(done, total, now - started))
                last_report = now
            if pause_s:
                time.sleep(pause_s)
    elapsed = time.monotonic() - started
    if done:
        report(_progress(done, total, elapsed) + ": done")
    return Hashed(done, elapsed)


_PENDING = text(
    f"SELECT id, password FROM {TABLE} WHERE {HASH_COLUMN} IS NULL AND id > :last "  # noqa: S608
    "ORDER BY id LIMIT :n"
)
_WRITE = text(
    f"UPDATE {TABLE} SET {HASH_COLUMN} = :hash WHERE id = :id AND {HASH_COLUMN} IS NULL"  # noqa: S608
)


def _progress(done: int, total: int, elapsed_s: float) -> str:
    total = max(total, done)
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"hashing {TABLE}.password: {done} of {total} rows ({100 * done // max(total, 1)}%), "
        f"{rate:,.0f} rows/s, {elapsed_s:.1f} s"
    )


def _hash(scheme: PasswordHash, password: str | None) -> str:
    if not password:
        return UNUSABLE
    # As POST /auth/login normalises what it verifies.
    return scheme.hash(normalize_password(password))
