"""Revision 0005 as a data migration on a live table: batched, resumable, stops on look-alikes."""

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, inspect, text

from app.migrate.username_keys import COLUMN, INDEX
from app.usernames import username_key
from tests.support.alembic import on_database, run_alembic, run_module, start_alembic, upgrade

KELVIN = "\u212a"
PROGRESS = re.compile(
    r"backfill user_list\.username_key: (\d+) of (\d+) rows \(\d+%\), [\d,]+ rows/s"
)


def add_users(names: list[str]) -> Callable[[Connection], None]:
    def work(connection: Connection) -> None:
        for name in names:
            connection.execute(
                text("INSERT INTO user_list (username, password_hash) VALUES (:u, 'h')"),
                {"u": name},
            )

    return work


def version(connection: Connection) -> str | None:
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def users(connection: Connection) -> list[tuple[object, ...]]:
    query = "SELECT id, username, password_hash, email FROM user_list ORDER BY id"
    return [tuple(r) for r in connection.execute(text(query))]


def keys(connection: Connection) -> dict[str, str | None] | None:
    """username -> stored key, or None while the column does not exist."""
    if COLUMN not in {c["name"] for c in inspect(connection).get_columns("user_list")}:
        return None
    rows = connection.execute(text(f"SELECT username, {COLUMN} FROM user_list"))
    return {name: key for name, key in rows}


def has_index(connection: Connection) -> bool:
    return INDEX in {i["name"] for i in inspect(connection).get_indexes("user_list")}


def before_0005(backend: str) -> str:
    """Where a failed 0005 leaves the database: SQLite runs the whole upgrade in one
    transaction (back at 0002); MySQL commits each revision, so 0003 and 0004 stay applied."""
    return "0002" if backend == "sqlite" else "0004"


def at_0002_with(url: str, names: list[str]) -> None:
    asyncio.run(upgrade(url, "0002"))
    on_database(url, add_users(names))


def test_backfill_keys_every_user_in_bounded_batches_with_progress(migration_url: str) -> None:
    url = migration_url
    names = [f"user{n}" for n in range(25)]
    at_0002_with(url, names)

    process = start_alembic(url, "upgrade", "head", migration_backfill_batch_size="10")
    _out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err

    stored = on_database(url, keys)
    assert stored == {name: username_key(name) for name in names}
    progress = [tuple(map(int, m.groups())) for m in PROGRESS.finditer(err)]
    assert progress[0] == (10, 25), "the first batch is reported, and is bounded"
    assert progress[-1] == (25, 25)
    assert "25 of 25 rows (100%)" in err and ": done" in err
    assert on_database(url, has_index) and on_database(url, version) == "0005"


def test_backfill_resumes_after_a_kill(migration_url: str, backend: str) -> None:
    """Killed half-way, MariaDB keeps the finished batches (each committed) and the next run
    keys only the rest; SQLite's run is one transaction, so nothing half-done remains."""
    url = migration_url
    names = [f"u{n:03d}" for n in range(120)]
    at_0002_with(url, names)

    process = start_alembic(
        url,
        "upgrade",
        "head",
        migration_backfill_batch_size="4",
        migration_backfill_pause_s="0.1",
    )
    try:
        deadline = time.monotonic() + 120
        if backend == "sqlite":  # nothing is visible from outside before the commit
            assert process.stderr is not None
            while "backfill user_list.username_key" not in process.stderr.readline():
                assert time.monotonic() < deadline and process.poll() is None
        else:
            while sum(k is not None for k in (on_database(url, keys) or {}).values()) < 8:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)  # our own child, by its id
    finally:
        process.wait(timeout=30)

    assert on_database(url, version) == before_0005(backend)
    stored = on_database(url, keys)
    if backend == "sqlite":
        assert stored is None, "the killed run left nothing behind"
        left = len(names)
    else:
        assert stored is not None
        done = {name: key for name, key in stored.items() if key is not None}
        assert 8 <= len(done) < len(names)
        assert all(key == username_key(name) for name, key in done.items())
        left = len(names) - len(done)

    rerun = run_alembic(url, "upgrade", "head")
    assert f"{left} of {left} rows (100%)" in rerun.stderr, rerun.stderr
    assert on_database(url, keys) == {name: username_key(name) for name in names}
    assert on_database(url, version) == "0005"


LOOK_ALIKES = [
    "admin",  # 1
    "\u0430dmin",  # 2: Cyrillic a
    "bob",  # 3
    "\uff41dmin",  # 4: fullwidth a
    "K",  # 5
    KELVIN,  # 6
    "caf\u00e9",  # 7: NFC
    "cafe\u0301",  # 8: NFD
]


def test_look_alike_users_stop_the_migration_before_the_index_listed_by_id(
    migration_url: str, backend: str
) -> None:
    url = migration_url
    at_0002_with(url, LOOK_ALIKES)
    before = on_database(url, users)

    failed = run_alembic(url, "upgrade", "head", check=False)
    assert failed.returncode != 0
    message = failed.stderr
    assert "3 group(s) of existing users have usernames that look alike" in message
    assert "ids 1, 2, 4 " in message and "ids 5, 6 " in message and "ids 7, 8 " in message
    assert "No user was deleted or renamed" in message
    assert on_database(url, users) == before, "no user deleted or renamed"
    assert on_database(url, version) == before_0005(backend)
    assert not (on_database(url, keys) is not None and on_database(url, has_index))
    if backend != "sqlite":  # the backfill committed; the look-alikes' keys were cleared
        stored = on_database(url, keys)
        assert stored is not None and stored["bob"] == "bob"
        assert stored["admin"] is None and stored[KELVIN] is None

    # What the operator does next: rename all but one of each group, and run it again.
    def rename(connection: Connection) -> None:
        for user_id, name in ((2, "admin2"), (4, "admin3"), (6, "kelvin"), (8, "cafe2")):
            connection.execute(
                text("UPDATE user_list SET username = :u WHERE id = :id"),
                {"u": name, "id": user_id},
            )

    on_database(url, rename)
    run_alembic(url, "upgrade", "head")
    stored = on_database(url, keys)
    assert stored is not None and all(key == username_key(name) for name, key in stored.items())
    assert on_database(url, version) == "0005" and on_database(url, has_index)


def test_backfill_keys_command_keys_users_a_previous_release_created(
    migration_url: str,
) -> None:
    """After the migration, rows written without a key (by the previous release during a rolling
    deploy, or after `--sql`) get theirs; one that collides is named with its holder."""
    url = migration_url
    at_0002_with(url, ["alice"])
    run_alembic(url, "upgrade", "head")
    on_database(url, add_users(["carol", "\u0430lice"]))  # keyless, as the old code writes

    refused = run_module(url, "app.migrate", "backfill-keys")
    assert refused.returncode == 1
    assert "ids 1, 3 ('alice', '\u0430lice')" in refused.stderr
    stored = on_database(url, keys)
    assert stored is not None and stored["\u0430lice"] is None

    on_database(url, lambda c: c.execute(text("DELETE FROM user_list WHERE id = 3")))
    keyed = run_module(url, "app.migrate", "backfill-keys", check=True)
    assert "1 user(s) given a username key" in keyed.stdout
    assert on_database(url, keys) == {"alice": "alice", "carol": username_key("carol")}


def test_offline_sql_adds_the_column_and_index_and_says_how_to_backfill(
    migration_url: str, backend: str
) -> None:
    sql = run_alembic(migration_url, "upgrade", "0002:head", "--sql").stdout
    assert f"ADD COLUMN {COLUMN}" in sql
    assert f"CREATE UNIQUE INDEX {INDEX}" in sql
    if backend != "sqlite":
        assert "ALGORITHM=INPLACE LOCK=NONE" in sql
    assert "python -m app.migrate backfill-keys" in sql


@pytest.mark.parametrize("name", ["\ufdfa" * 10, "\u3164x"])
def test_extreme_names_key_and_index_on_both_backends(migration_url: str, name: str) -> None:
    """Ten of the character NFKC expands most (18 each) fill the key column exactly."""
    url = migration_url
    at_0002_with(url, [name])
    run_alembic(url, "upgrade", "head")
    assert on_database(url, keys) == {name: username_key(name)}
