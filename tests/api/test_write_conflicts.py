"""A write conflict (MySQL error 1213: a deadlock, a lost Galera certification) at COMMIT is
retried a bounded number of times: the client sees the write done, or a 503, never a 500."""

import sqlite3
from collections.abc import Iterator
from typing import Any

import aiomysql
import pytest
from httpx import AsyncClient
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from app.db_sqlite import PrefetchCursor
from app.write_conflicts import ATTEMPTS
from tests.support.auth import PASSWORD, register


class Conflicts:
    """Fails the next `left` commits of any session the way Galera does, counting commits."""

    def __init__(self) -> None:
        self.left = 0
        self.commits = 0

    def before_commit(self, _session: Session) -> None:
        self.commits += 1
        if self.left > 0:
            self.left -= 1
            raise OperationalError("COMMIT", {}, Exception(1213, "Deadlock found"))


@pytest.fixture
def conflicts() -> Iterator[Conflicts]:
    injected = Conflicts()
    event.listen(Session, "before_commit", injected.before_commit)
    yield injected
    event.remove(Session, "before_commit", injected.before_commit)


async def count_users(db: AsyncEngine, username: str) -> Any:
    async with db.connect() as connection:
        query = text("SELECT COUNT(*) FROM user_list WHERE username = :u")
        return (await connection.execute(query, {"u": username})).scalar_one()


async def test_registration_whose_commit_conflicts_is_retried_and_stored_once(
    client: AsyncClient, db: AsyncEngine, conflicts: Conflicts
) -> None:
    conflicts.left = ATTEMPTS - 1
    response = await client.post("/users", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 201, response.text
    assert conflicts.commits == ATTEMPTS
    assert await count_users(db, "alice") == 1


async def test_update_whose_commit_conflicts_is_retried(
    client: AsyncClient, db: AsyncEngine, conflicts: Conflicts
) -> None:
    bob = await register(client, "bob")
    conflicts.left = 1
    response = await client.patch(
        f"/users/{bob.id}", json={"email": "b@ex.io"}, headers=bob.headers
    )
    assert response.status_code == 200, response.text
    async with db.connect() as connection:
        query = text("SELECT email FROM user_list WHERE id = :id")
        assert (await connection.execute(query, {"id": bob.id})).scalar_one() == "b@ex.io"


async def test_conflicts_past_the_bound_are_a_503_not_a_500(
    client: AsyncClient, db: AsyncEngine, conflicts: Conflicts
) -> None:
    conflicts.left = ATTEMPTS
    response = await client.post("/users", json={"username": "carol", "password": PASSWORD})
    assert response.status_code == 503, response.text
    assert "Retry-After" in response.headers
    assert conflicts.commits == ATTEMPTS
    assert await count_users(db, "carol") == 0


async def test_read_aborted_by_a_schema_change_is_run_again(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On Galera a DDL statement (TOI) reaching a node aborts the reads in flight on its table
    # with 1213: the read route runs again instead of answering 503.
    ada = await register(client, "ada")
    aborted: list[str] = []

    def abort_once(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not aborted and "FROM user_list" in statement:
            aborted.append(statement)
            raise OperationalError(statement, {}, Exception(1213, "Deadlock found"))

    # The read runs on the driver's own cursor (app/point_reads.py: aiomysql's, aiosqlite's
    # as app/db_sqlite.py makes it), elsewhere through Core.
    driver_execute = aiomysql.Cursor.execute
    sqlite_execute = PrefetchCursor.execute

    async def abort_once_in_driver(cursor: Any, query: str, args: Any = None) -> Any:
        if not aborted and "FROM user_list" in query:
            aborted.append(query)
            raise aiomysql.OperationalError(1213, "Deadlock found")
        return await driver_execute(cursor, query, args)

    async def abort_once_in_sqlite(cursor: Any, query: str, args: Any = None) -> Any:
        if not aborted and "FROM user_list" in query:
            aborted.append(query)
            raise sqlite3.OperationalError(1213, "Deadlock found")
        return await sqlite_execute(cursor, query, args)

    monkeypatch.setattr(aiomysql.Cursor, "execute", abort_once_in_driver)
    monkeypatch.setattr(PrefetchCursor, "execute", abort_once_in_sqlite)
    event.listen(Engine, "before_cursor_execute", abort_once)
    try:
        response = await client.get(f"/users/{ada.id}")
    finally:
        event.remove(Engine, "before_cursor_execute", abort_once)
    assert response.status_code == 200, response.text
    assert aborted, "nothing was aborted: the test did not test anything"
