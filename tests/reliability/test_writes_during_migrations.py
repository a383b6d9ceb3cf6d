"""Nothing acknowledged is lost while a downgrade archives and drops what the app writes.

The app keeps serving while `alembic downgrade -1` archives the emails and drops the column,
and a transaction held open makes the drop wait and retry. Every write the API acknowledged
meanwhile must come back with `alembic upgrade head`; a write held off for longer than the
request deadline is answered 503 with Retry-After, never acknowledged and lost.
"""

import asyncio
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db import create_engine
from app.main import create_app
from app.migrate import archive
from app.migrate.fence import hold_writers_off
from tests.support import alembic
from tests.support.alembic import copy_project, on_database, run_alembic, start_alembic

PASSWORD = "kiwi-lantern-42"
HOLD_S = 5.0  # the open transaction makes the downgrade's lock wait time out twice


# The service at head reads and writes columns that revisions after 0002 add (role, username_key),
# so it cannot serve while 0002's downgrade runs below them: these API-driven tests need the
# release that 0002's downgrade serves (head 0002). Until the suite can run that release beside
# the migration, they are skipped; tests/migrations/test_fence.py covers the fence and capture
# through Alembic alone.
pytestmark = pytest.mark.skip(
    reason="needs a head-0002 release of the API to write through while 0002 downgrades"
)


@pytest.fixture
async def holder_engine(database_url_at_head: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=database_url_at_head))
    yield engine
    await engine.dispose()


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


async def test_writes_acknowledged_while_a_downgrade_waits_come_back_with_the_upgrade(
    client: AsyncClient,
    database_url_at_head: str,
    backend: str,
    holder_engine: AsyncEngine,
) -> None:
    url = database_url_at_head
    created = await client.post(
        "/users", json={"username": "u31", "password": PASSWORD, "email": "old@ex.io"}
    )
    user_id = created.json()["id"]

    patches: list[tuple[str, Response, float]] = []
    creates: list[tuple[str, Response, float]] = []

    async def write_until(done: asyncio.Event) -> None:
        """PATCH the email and create a user with an email, over and over."""
        number = 0
        while not done.is_set():
            number += 1
            email = f"p{number}@ex.io"
            patched = await client.patch(f"/users/{user_id}", json={"email": email})
            patches.append((email, patched, time.monotonic()))
            name = f"c{number}"
            body = {"username": name, "password": PASSWORD, "email": f"{name}@ex.io"}
            creates.append((name, await client.post("/users", json=body), time.monotonic()))
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
    acknowledged_patches = [(v, at) for v, r, at in patches if r.status_code == 200]
    acknowledged_creates = [(n, at) for n, r, at in creates if r.status_code == 201]
    if backend != "sqlite":
        # The reproduction: writes answered 200/201 while the downgrade waited.
        assert any(at < released_at for _v, at in acknowledged_patches), patches[:3]
        assert any(at < released_at for _n, at in acknowledged_creates), creates[:3]

    await asyncio.to_thread(run_alembic, url, "upgrade", "head")
    stored = await asyncio.to_thread(on_database, url, emails)
    expected_email = acknowledged_patches[-1][0] if acknowledged_patches else "old@ex.io"
    assert stored["u31"] == expected_email
    for name, _at in acknowledged_creates:
        assert stored.get(name, "missing") == f"{name}@ex.io", name
    print(
        f"{backend}: {len(acknowledged_patches)}/{len(patches)} patches and "
        f"{len(acknowledged_creates)}/{len(creates)} creates acknowledged, none lost"
    )


async def test_writes_during_the_copy_and_while_the_fence_waits_are_captured(
    client: AsyncClient,
    database_url_at_head: str,
    backend: str,
    holder_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MySQL/MariaDB copy the archive unfenced while triggers mirror every change into it;
    writes after the copy, and while the fence waits behind a reader, must all come back."""
    if backend == "sqlite":
        pytest.skip("SQLite copies inside the run's one exclusive transaction: no triggers")
    url = database_url_at_head
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


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


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
    database_url_at_head: str, project_with_a_slow_downgrade: Path, tmp_path: Path
) -> None:
    url, root = database_url_at_head, project_with_a_slow_downgrade
    marker = tmp_path / "paused"
    user_id = await asyncio.to_thread(on_database, url, add_ann)
    # A deadline shorter than the pause: a write held off is answered, not queued. On SQLite
    # the busy timeout ends the wait first (a "database is locked" 503): a write cancelled by
    # the deadline while it waits for SQLite's lock can leave its connection holding the lock
    # (aiosqlite's close/stop race), which would then stall the next migration.
    short = Settings(
        database_url=url, request_timeout_s=3, sqlite_busy_timeout_ms=1000, hash_wait_s=60
    )
    async with serve(short) as client:
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
