"""`python -m app.migrate adopt` on databases made by the tutorial's Flask app and Flask-Migrate."""

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import URL, make_url

from app.config import Settings
from app.db import create_engine, database_url
from app.main import create_app
from app.migrate.adopt.passwords import add_hash_column, hash_passwords
from app.migrate.adopt.takeover import set_aside
from app.migrate.config import PROJECT_ROOT
from app.migrate.gate import SchemaMismatch, check_schema
from app.migrate.journal import read_journal
from tests.support import backends
from tests.support.alembic import HEAD, on_database, run_module, upgrade
from tests.support.schema import schema_snapshot
from tests.support.tutorial_app import User, make_tutorial_database

# Passwords of letters and signs, so none can turn up by chance inside a hash or a timestamp.
FIRST_USERS: list[User] = [
    {"username": "法外狂徒张小三", "password": "fa-wai-zs"},
    {"username": "alice", "password": "al-kiwi-42"},
    {"username": "bob", "password": "bo-lemon!"},
]
LATER_USERS: list[User] = [
    {"username": "carol", "password": "ca-mango#", "email": "carol@ex.io"},
    {"username": "dave", "password": "da-plum$$", "email": None},
]
PROGRESS = re.compile(r"hashing user_list\.password: (\d+) of (\d+) rows")


def adopt(
    url: str, *args: str, check: bool = False, **settings: str
) -> subprocess.CompletedProcess[str]:
    return run_module(url, "app.migrate", "adopt", *args, cwd=PROJECT_ROOT, check=check, **settings)


def everything(connection: Connection) -> dict[str, Any]:
    """Every table's schema and rows, bookkeeping included: what `adopt` must leave alone."""
    tables = sorted(inspect(connection).get_table_names())
    rows = {t: [tuple(r) for r in connection.execute(text(f"SELECT * FROM {t}"))] for t in tables}
    return {"schema": schema_snapshot(connection), "rows": rows}


def user_rows(connection: Connection) -> list[tuple[Any, ...]]:
    columns = {c["name"] for c in inspect(connection).get_columns("user_list")}
    email = "email" if "email" in columns else "NULL"
    query = f"SELECT id, username, {email} FROM user_list ORDER BY id"
    return [tuple(r) for r in connection.execute(text(query))]


def values_everywhere(connection: Connection) -> list[str]:
    """Every value in every column of every table, as text."""
    found = []
    for table in inspect(connection).get_table_names():
        for row in connection.execute(text(f"SELECT * FROM {table}")):
            found += [str(value) for value in row if value is not None]
    return found


def reference_schema(backend: str, tmp_path: Path, mysql_database: URL | None) -> dict[str, Any]:
    """The schema `alembic upgrade head` gives a new, empty database on `backend`."""
    if backend == "sqlite":
        (tmp_path / "reference").mkdir()
        url = backends.sqlite_url(tmp_path / "reference")
        asyncio.run(upgrade(url))
        return on_database(url, schema_snapshot)
    assert mysql_database is not None
    server = backends.throwaway_mysql_url(mysql_database)
    asyncio.run(backends.recreate_mysql_database(server))
    try:
        url = backends.url_string(backends.with_scheme(backend, server))
        asyncio.run(upgrade(url))
        return on_database(url, schema_snapshot)
    finally:
        asyncio.run(backends.drop_mysql_database(server))


async def _log_in(url: str, users: list[User]) -> list[int]:
    settings = Settings(database_url=url, hash_wait_s=60, hash_queue_max=1000)
    application = create_app(settings)  # its lifespan runs the start-up schema gate
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://test") as http,
    ):
        codes = []
        for user in users:
            form = {"username": user["username"], "password": user["password"]}
            codes.append((await http.post("/auth/login", data=form)).status_code)
        wrong = {"username": "alice", "password": "not-hers-1"}
        codes.append((await http.post("/auth/login", data=wrong)).status_code)
        return codes


async def _check_gate(url: str) -> None:
    engine = create_engine(Settings(database_url=url), database_url(url), pooled=False)
    try:
        await check_schema(engine, "refuse")
    finally:
        await engine.dispose()


def log_in(url: str, users: list[User]) -> list[int]:
    """Each user's answer to POST /auth/login, then alice's with a wrong password."""
    return asyncio.run(_log_in(url, users))


def assert_no_plaintext(url: str, users: list[User]) -> None:
    values = on_database(url, values_everywhere)
    for user in users:
        password = str(user["password"])
        assert not [v for v in values if password in v], "a plaintext password is still stored"
    columns = on_database(url, lambda c: inspect(c).get_columns("user_list"))
    assert "password" not in {c["name"] for c in columns}
    path = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and path:
        stored = b"".join(p.read_bytes() for p in Path(path).parent.glob(Path(path).name + "*"))
        for user in users:
            assert str(user["password"]).encode() not in stored, "plaintext left in the file"


@pytest.mark.parametrize("email", [True, False], ids=["after-email", "first-revision"])
def test_adopted_tutorial_users_log_in_with_their_old_passwords(
    migration_url: str, backend: str, tmp_path: Path, mysql_database: URL | None, email: bool
) -> None:
    url = migration_url
    later = LATER_USERS if email else []
    make_tutorial_database(url, tmp_path, FIRST_USERS, email=email, later_users=later)
    foreign = on_database(
        url, lambda c: c.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    )
    before = on_database(url, user_rows)
    with pytest.raises(SchemaMismatch, match=r"python -m app\.migrate adopt"):
        asyncio.run(_check_gate(url))  # the service refuses the tutorial's schema, and says why

    result = adopt(url, check=True, migration_backfill_batch_size="2")

    assert f"adopted: {len(before)} users at revision {HEAD}" in result.stdout
    assert on_database(url, user_rows) == before, "ids, usernames and emails are kept exactly"
    users = FIRST_USERS + later
    assert log_in(url, users) == [200] * len(users) + [401]
    assert_no_plaintext(url, users)
    expected = reference_schema(backend, tmp_path, mysql_database)
    assert on_database(url, schema_snapshot) == expected, "the schema `upgrade head` makes"
    journal = on_database(url, read_journal)
    adopted = [r for r in journal if r["direction"] == "adopt"]
    assert [r["revision"] for r in adopted] == [foreign]
    assert [r["revision"] for r in journal if r["direction"] == "upgrade"][-1] == HEAD
    run_module(url, "app.migrate", "journal", "--check", check=True)
    for text_out in (result.stdout, result.stderr):
        assert not any(str(u["password"]) in text_out for u in users), "a password was printed"

    settled = on_database(url, everything)
    again = adopt(url, check=True)
    assert "already adopted" in again.stdout
    assert on_database(url, everything) == settled, "a second run changes nothing"


def test_dry_run_prints_the_plan_and_changes_nothing(migration_url: str, tmp_path: Path) -> None:
    url = migration_url
    make_tutorial_database(url, tmp_path, FIRST_USERS, email=True, later_users=LATER_USERS)
    before = on_database(url, everything)

    result = adopt(url, "--dry-run", check=True)

    assert "Flask-Migrate revision" in result.stdout and "5 users" in result.stdout
    assert "every one can be kept" in result.stdout
    assert "hash 5 plaintext passwords" in result.stdout
    assert "dry run: nothing was changed" in result.stdout
    assert on_database(url, everything) == before


def test_duplicate_and_lookalike_usernames_stop_it_before_any_change(
    migration_url: str, backend: str, tmp_path: Path
) -> None:
    url = migration_url
    users: list[User] = [
        {"username": "bob", "password": "one-pass1"},
        {"username": "Alice", "password": "two-pass2"},
        {"username": "bob", "password": "thr-pass3"},
        {"username": "alice", "password": "fou-pass4"},
        {"username": " eve", "password": "fiv-pass5"},
        {"username": "carol", "password": "six-pass6"},
    ]
    if backend == "sqlite":  # which ignores varchar's length: the tutorial stored any name
        users.append({"username": "much-too-long", "password": "sev-pass7"})
    make_tutorial_database(url, tmp_path, users, email=False)
    before = on_database(url, everything)

    result = adopt(url)

    assert result.returncode == 1
    assert "nothing was changed" in result.stderr
    assert "ids 1, 3 share the username 'bob'" in result.stderr
    assert "ids 2 ('Alice'), 4 ('alice') look alike" in result.stderr
    assert "id 5 (' eve'): username must not start or end with whitespace" in result.stderr
    assert "id 6" not in result.stderr
    if backend == "sqlite":
        assert "id 7 ('much-too-long'): username string should have at most 10" in result.stderr
    assert not any(str(u["password"]) in result.stderr + result.stdout for u in users)
    assert on_database(url, everything) == before


def test_a_schema_not_the_tutorials_is_refused_with_what_differs(migration_url: str) -> None:
    url = migration_url

    def foreign(connection: Connection) -> None:
        connection.execute(
            text(
                "CREATE TABLE user_list "
                "(id INTEGER PRIMARY KEY, name VARCHAR(20), password VARCHAR(10))"
            )
        )
        connection.execute(text("CREATE TABLE posts (id INTEGER PRIMARY KEY)"))
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('1a2b3c4d5e6f')"))

    on_database(url, foreign)
    before = on_database(url, everything)

    result = adopt(url)

    assert result.returncode == 1
    assert "REFUSED: not the tutorial's database" in result.stderr
    for difference in ("unexpected table posts", "user_list.username is missing",
                       "unexpected column user_list.name"):  # fmt: skip
        assert difference in result.stderr
    assert on_database(url, everything) == before


def hashes(connection: Connection, table: str) -> dict[int, str]:
    query = f"SELECT id, password_hash FROM {table} WHERE password_hash IS NOT NULL"
    return {int(i): h for i, h in connection.execute(text(query))}


def test_killed_while_hashing_the_rerun_finishes_without_rehashing(
    migration_url: str, tmp_path: Path
) -> None:
    url = migration_url
    users: list[User] = [{"username": f"user{n}", "password": f"pw-{n}-x"} for n in range(12)]
    make_tutorial_database(url, tmp_path, users, email=False)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MIGRATION_BACKFILL_PAUSE_S": "0.5",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.migrate", "adopt", "--batch-size", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # the first progress line: its batch is committed
        if PROGRESS.search(line):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    kept = on_database(url, lambda c: hashes(c, "user_list"))
    assert 2 <= len(kept) < len(users), "killed part-way: some batches committed, not all"
    result = adopt(url, check=True)

    assert f"resuming: {len(kept)} passwords hashed by a run before" in result.stdout
    progress = [tuple(map(int, m.groups())) for m in PROGRESS.finditer(result.stderr)]
    assert progress[-1] == (len(users) - len(kept),) * 2, "the rerun hashes only the rest"
    final = on_database(url, lambda c: hashes(c, "user_list"))
    assert len(final) == len(users)
    assert {i: final[i] for i in kept} == kept, "no row hashed twice"
    assert log_in(url, users) == [200] * len(users) + [401]
    assert_no_plaintext(url, users)


def test_stopped_after_the_rename_the_rerun_finishes(migration_url: str, tmp_path: Path) -> None:
    url = migration_url
    make_tutorial_database(url, tmp_path, FIRST_USERS, email=False)
    before = on_database(url, user_rows)

    def hashed_and_set_aside(connection: Connection) -> str:
        revision = str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar())
        add_hash_column(connection)
        settings = Settings(database_url=url)
        hash_passwords(connection, settings, batch_size=2, pause_s=0, report=lambda _line: None)
        set_aside(connection, revision, len(before))  # then the process dies
        return revision

    foreign = on_database(url, hashed_and_set_aside)
    result = adopt(url, check=True)

    assert "resuming: the passwords are hashed" in result.stdout
    assert on_database(url, user_rows) == before
    assert log_in(url, FIRST_USERS) == [200] * len(FIRST_USERS) + [401]
    assert_no_plaintext(url, FIRST_USERS)
    adopted = [r["revision"] for r in on_database(url, read_journal) if r["direction"] == "adopt"]
    assert adopted == [foreign], "the revision is recorded once"
