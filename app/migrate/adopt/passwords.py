"""Hash the tutorial's plaintext passwords into a new column, batch by batch, resumably.

The plaintext column stays until every user is copied (`takeover`), so a run killed here can
be retried: the next run hashes only rows whose hash is still NULL, and each UPDATE writes a
row's hash only where it is NULL, so no row is hashed twice. No plaintext is printed, logged
or archived: the progress lines count rows, and errors carry ids and hashes only.
"""

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pwdlib import PasswordHash
from sqlalchemy import Connection, text

from app.backend import instant_clause, is_mysql
from app.config import Settings
from app.cpu_limit import available_cpus
from app.hashing import password_hash_from
from app.migrate.adopt.tutorial import HASH_COLUMN, TABLE
from app.migrate.backfill import Backfill, run_backfill
from app.passwords import normalize_password

# No password can match it (pwdlib knows no such scheme): for users the tutorial stored
# without a password, who could not log in there either.
UNUSABLE = "!"


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
    """Fill password_hash where NULL with the service's argon2id, one commit per batch."""
    scheme = password_hash_from(settings)
    job = Backfill(TABLE, HASH_COLUMN, ("password",), lambda p: _hash(scheme, p))
    started = time.monotonic()
    # argon2 releases the GIL: one thread per usable CPU hashes a batch in parallel.
    with ThreadPoolExecutor(available_cpus(), thread_name_prefix="adopt-argon2") as pool:

        def mapper(work: Callable[[Sequence[Any]], str], rows: Any) -> list[str]:
            return list(pool.map(work, rows))

        rows = run_backfill(
            connection,
            job,
            batch_size=batch_size,
            pause_s=pause_s,
            commit=connection.commit,
            report=report,
            mapper=mapper,
        )
    return Hashed(rows, time.monotonic() - started)


def _hash(scheme: PasswordHash, password: str | None) -> str:
    if not password:
        return UNUSABLE
    # As POST /auth/login normalises what it verifies.
    return scheme.hash(normalize_password(password))
