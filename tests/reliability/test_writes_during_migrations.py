"""Nothing acknowledged is lost while a downgrade drops what the app writes.

The reproduction of the issue: a transaction held open makes the downgrade's DDL wait and
retry, the app keeps writing meanwhile, and after `alembic upgrade head` every write the API
acknowledged is there. It runs twice: with today's service while `downgrade -1` takes back the
head revision, and with the release that served schema 0002 (tests/support/release_0002.py)
while 0002's downgrade archives the emails that release writes and drops the column. A write
held off for longer than the request deadline is answered 503 with Retry-After, never
acknowledged and lost.
"""

import asyncio
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db import create_engine
from app.migrate import archive
from app.migrate.fence import hold_writers_off
from app.usernames import username_key
from tests.support import alembic
from tests.support.alembic import copy_project, on_database, run_alembic, start_alembic
from tests.support.auth import register
from tests.support.release_0002 import create_release_0002_app

PASSWORD = "kiwi-lantern-42"
HOLD_S = 5.0  # the open transaction makes the downgrade's lock wait time out twice
RELEASE = "0002"  # the release whose revision archives what it writes (emails)


@pytest.fixture
async def holder_engine(database_url_at_head: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=database_url_at_head))
    yield engine
    await engine.dispose()


def release_settings(url: str, **overrides: Any) -> Settings:
    # Generous hashing bounds: these tests are about the database, not the hashing pool.
    values: dict[str, Any] = {"hash_wait_s": 60, "hash_queue_max": 1000, "request_timeout_s": 90}
    return Settings(database_url=url, **(values | overrides))


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture
async def database_url_at_release(database_url_at_head: str) -> str:
    """The test database taken back to the release's head, 0002, as a rollback would."""
    await alembic.downgrade(database_url_at_head, RELEASE)
    return database_url_at_head


@pytest.fixture
async def release_client(database_url_at_release: str) -> AsyncIterator[AsyncClient]:
    """The release that served schema 0002, writing emails, on the test database."""
    async with serve(create_release_0002_app(release_settings(database_url_at_release))) as client:
        yield client


async def begin_reading_transaction(connection: AsyncConnection, backend: str) -> None:
    """`BEGIN; SELECT COUNT(*) FROM user_list;` and keep it open, as a slow request would."""
    if backend == "sqlite":
        await connection.exec_driver_sql("BEGIN")  # pysqlite would not begin for a SELECT
    await connection.execute(text("SELECT COUNT(*) FROM user_list"))


async def wait_until_a_migration_waits(engine: AsyncEngine, timeout_s: float = 30) -> None:
    """Until another connection of this database waits for a table's metadata lock."""
    deadline = time.monotonic() + timeout_s
    async with engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = await watcher.execute(
                text(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                    "AND STATE LIKE 'Waiting for table metadata lock%'"
                )
            )
            if waiting.scalar():
                return
            await watcher.rollback()
            await asyncio.sleep(0.05)
    raise AssertionError("the downgrade never waited for its lock")


def emails(connection: Connection) -> dict[str, str | None]:
    rows = connection.execute(text("SELECT username, email FROM user_list"))
    return {username: email for username, email in rows}


def keys(connection: Connection) -> dict[str, str | None]:
    rows = connection.execute(text("SELECT username, username_key FROM user_list"))
    return {username: key for username, key in rows}


Writes = list[tuple[str, Response, float]]


async def downgrade_while_writing(
    url: str,
    backend: str,
    holder_engine: AsyncEngine,
    write: Callable[[int], Awaitable[tuple[tuple[str, Response], tuple[str, Response]]]],
) -> tuple[Writes, Writes]:
    """The reproduction: hold a reader open, `downgrade -1`, write meanwhile, release it.

    `write(n)` makes the n-th PATCH and create; the patches and creates are returned with the
    time of their answers.
    """
    patches: Writes = []
    creates: Writes = []

    async def write_until(done: asyncio.Event) -> None:
        number = 0
        while not done.is_set():
            number += 1
            (email, patched), (name, created) = await write(number)
            patches.append((email, patched, time.monotonic()))
            creates.append((name, created, time.monotonic()))
            await asyncio.sleep(0.05)

    async with holder_engine.connect() as holder:
        await begin_reading_transaction(holder, backend)
        downgrade = await asyncio.to_thread(start_alembic, url, "downgrade", "-1")
        if backend != "sqlite":  # SQLite's migration never waits for a reader (WAL)
            await wait_until_a_migration_waits(holder_engine)
        done = asyncio.Event()
        writers = asyncio.create_task(write_until(done))
        await asyncio.sleep(HOLD_S)
        released_at = time.monotonic()
        await holder.rollback()
    code = await asyncio.to_thread(downgrade.wait, 120)
    done.set()
    await writers
    _out, err = downgrade.communicate()
    assert code == 0, err
    for _value, response, _at in patches + creates:
        assert response.status_code in (200, 201, 503), response.text
    if backend != "sqlite":
        # The reproduction: writes answered 200/201 while the downgrade waited.
        assert any(r.status_code == 200 and at < released_at for _v, r, at in patches), patches[:3]
        assert any(r.status_code == 201 and at < released_at for _v, r, at in creates), creates[:3]
    return patches, creates


def acknowledged(writes: Writes, status: int) -> list[str]:
    return [value for value, response, _at in writes if response.status_code == status]


async def upgrade_and_find_every_acknowledged_write(
    url: str, backend: str, patches: Writes, creates: Writes
) -> list[str]:
    """`upgrade head`, then u31's last acknowledged email and every acknowledged create's are
    stored; the names of those creates."""
    await asyncio.to_thread(run_alembic, url, "upgrade", "head")
    stored = await asyncio.to_thread(on_database, url, emails)
    patched = acknowledged(patches, 200)
    assert stored["u31"] == (patched[-1] if patched else "old@ex.io")
    created = acknowledged(creates, 201)
    for name in created:
        assert stored.get(name, "missing") == f"{name}@ex.io", name
    print(
        f"{backend}: {len(patched)}/{len(patches)} patches and "
        f"{len(created)}/{len(creates)} creates acknowledged, none lost"
    )
    return created


async def test_writes_acknowledged_while_the_head_revision_downgrades_come_back_with_the_upgrade(
    client: AsyncClient, database_url_at_head: str, backend: str, holder_engine: AsyncEngine
) -> None:
    """Today's service writes through its own API while `downgrade -1` takes back the head."""
    url = database_url_at_head
    owner = await register(client, "u31", PASSWORD, email="old@ex.io")

    async def write(number: int) -> tuple[tuple[str, Response], tuple[str, Response]]:
        email, name = f"p{number}@ex.io", f"c{number}"
        patched = await client.patch(
            f"/users/{owner.id}", json={"email": email}, headers=owner.headers
        )
        body = {"username": name, "password": PASSWORD, "email": f"{name}@ex.io"}
        return (email, patched), (name, await client.post("/users", json=body))

    patches, creates = await downgrade_while_writing(url, backend, holder_engine, write)

    created = await upgrade_and_find_every_acknowledged_write(url, backend, patches, creates)
    # The dropped column was derived: the upgrade keys every user again, those created meanwhile
    # included.
    stored_keys = await asyncio.to_thread(on_database, url, keys)
    assert {name: stored_keys[name] for name in created} == {n: username_key(n) for n in created}


async def test_writes_acknowledged_while_0002_downgrades_come_back_with_the_upgrade(
    release_client: AsyncClient,
    database_url_at_release: str,
    backend: str,
    holder_engine: AsyncEngine,
) -> None:
    """The release at 0002 writes emails while 0002's downgrade archives them and drops them."""
    url = database_url_at_release
    created = await release_client.post(
        "/users", json={"username": "u31", "password": PASSWORD, "email": "old@ex.io"}
    )
    user_id = created.json()["id"]

    async def write(number: int) -> tuple[tuple[str, Response], tuple[str, Response]]:
        email, name = f"p{number}@ex.io", f"c{number}"
        patched = await release_client.patch(f"/users/{user_id}", json={"email": email})
        body = {"username": name, "password": PASSWORD, "email": f"{name}@ex.io"}
        return (email, patched), (name, await release_client.post("/users", json=body))

    patches, creates = await downgrade_while_writing(url, backend, holder_engine, write)

    await upgrade_and_find_every_acknowledged_write(url, backend, patches, creates)


async def test_writes_during_the_copy_and_while_the_fence_waits_are_captured(
    release_client: AsyncClient,
    database_url_at_release: str,
    backend: str,
    holder_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MySQL/MariaDB copy the archive unfenced while triggers mirror every change into it;
    writes after the copy, and while the fence waits behind a reader, must all come back."""
    if backend == "sqlite":
        pytest.skip("SQLite copies inside the run's one exclusive transaction: no triggers")
    url, client = database_url_at_release, release_client
    user_id = (
        await client.post(
            "/users", json={"username": "u31", "password": PASSWORD, "email": "old@ex.io"}
        )
    ).json()["id"]
    copied, go_on = threading.Event(), threading.Event()

    def pause_before_the_fence(*args: Any, **kwargs: Any) -> None:
        copied.set()
        go_on.wait(60)
        hold_writers_off(*args, **kwargs)

    monkeypatch.setattr(archive, "hold_writers_off", pause_before_the_fence)
    downgrading = asyncio.create_task(alembic.downgrade(url, "-1"))
    assert await asyncio.to_thread(copied.wait, 60), "the downgrade never copied"

    async def write(number: int) -> None:
        patched = await client.patch(f"/users/{user_id}", json={"email": f"p{number}@ex.io"})
        assert patched.status_code == 200, patched.text
        body = {"username": f"c{number}", "password": PASSWORD, "email": f"c{number}@ex.io"}
        assert (await client.post("/users", json=body)).status_code == 201

    await write(1)  # after the copy, before the fence: only the triggers see it
    async with holder_engine.connect() as holder:
        await begin_reading_transaction(holder, backend)
        go_on.set()
        await wait_until_a_migration_waits(holder_engine)  # the fence waits behind the reader
        await write(2)  # answered between the fence's attempts
        await holder.rollback()
    await downgrading

    await asyncio.to_thread(run_alembic, url, "upgrade", "head")
    stored = await asyncio.to_thread(on_database, url, emails)
    assert (stored["u31"], stored["c1"], stored["c2"]) == ("p2@ex.io", "c1@ex.io", "c2@ex.io")


SLOW_STEP_S = 6
PAUSE = """

def _pause_between_copy_and_drop() -> None:
    import os
    import pathlib
    import time

    pathlib.Path(os.environ["SLOW_STEP_MARKER"]).touch()
    time.sleep(float(os.environ["SLOW_STEP_S"]))
"""


@pytest.fixture
def project_with_a_slow_downgrade(tmp_path: Path) -> Path:
    """A copy of the project whose 0002 downgrade pauses between its archive copy and its drop,
    as copying a large table would, and says when the pause starts."""
    root = copy_project(tmp_path / "project")
    revision = root / "alembic" / "versions" / "0002_add_email.py"
    source = revision.read_text()
    copy_line = '    archive_columns(revision, "user_list", ["email"])'
    assert copy_line in source
    paused = source.replace(copy_line, f"{copy_line}\n    _pause_between_copy_and_drop()")
    revision.write_text(paused + PAUSE)
    return root


async def wait_for(marker: Path, process: "subprocess.Popen[str]", timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(marker.exists):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the downgrade never reached its pause"
        await asyncio.sleep(0.05)


def add_ann(connection: Connection) -> int:
    connection.execute(
        text("INSERT INTO user_list (username, password_hash, email) VALUES ('ann', 'h', :e)"),
        {"e": "ann@ex.io"},
    )
    return int(connection.execute(text("SELECT id FROM user_list")).scalar_one())


async def test_a_write_held_off_by_a_downgrade_is_answered_503_and_not_lost(
    database_url_at_release: str, project_with_a_slow_downgrade: Path, tmp_path: Path
) -> None:
    url, root = database_url_at_release, project_with_a_slow_downgrade
    marker = tmp_path / "paused"
    user_id = await asyncio.to_thread(on_database, url, add_ann)
    # A deadline shorter than the pause: a write held off is answered, not queued. On SQLite
    # the busy timeout ends the wait first (a "database is locked" 503): a write cancelled by
    # the deadline while it waits for SQLite's lock can leave its connection holding the lock
    # (aiosqlite's close/stop race), which would then stall the next migration.
    short = release_settings(url, request_timeout_s=3, sqlite_busy_timeout_ms=1000)
    async with serve(create_release_0002_app(short)) as client:
        downgrade = await asyncio.to_thread(
            start_alembic,
            url,
            "downgrade",
            "-1",
            cwd=root,
            slow_step_marker=str(marker),
            slow_step_s=str(SLOW_STEP_S),
            # The pause is an edit of the applied 0002: accepted (and journaled) deliberately.
            migration_allow_edited="1",
        )
        await wait_for(marker, downgrade)  # the archive copy is taken; the drop follows
        held_off = await client.patch(f"/users/{user_id}", json={"email": "new@ex.io"})
        code = await asyncio.to_thread(downgrade.wait, 120)
    assert code == 0, downgrade.communicate()[1]

    assert held_off.status_code == 503, held_off.text
    assert held_off.headers["retry-after"]
    await asyncio.to_thread(run_alembic, url, "upgrade", "head", cwd=root)
    assert (await asyncio.to_thread(on_database, url, emails))["ann"] == "ann@ex.io"
