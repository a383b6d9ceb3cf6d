"""`python -m app.admin create-admin`: the first admin, password from a prompt or stdin only."""

import asyncio
import getpass
import os
import subprocess
import sys

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import admin
from app.migrate.config import PROJECT_ROOT
from tests.support.auth import bearer, log_in

ADMIN_PASSWORD = "chief-Passw0rd-77"


def create_admin(url: str, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.admin", "create-admin", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def count_users(db: AsyncEngine) -> int:
    async with db.connect() as connection:
        count: int = (await connection.execute(text("SELECT COUNT(*) FROM user_list"))).scalar_one()
        return count


async def test_create_admin_reads_the_password_from_stdin(
    database_url_at_head: str, client: AsyncClient
) -> None:
    result = await asyncio.to_thread(
        create_admin,
        database_url_at_head,
        "boss",
        "--email",
        "b@ex.io",
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert "created admin 'boss'" in result.stdout
    assert ADMIN_PASSWORD not in result.stdout + result.stderr
    token = await log_in(client, "boss", ADMIN_PASSWORD)
    me = (await client.get("/users/me", headers=bearer(token))).json()
    assert me["role"] == "admin" and me["email"] == "b@ex.io"


async def test_there_is_no_way_to_pass_the_password_on_the_command_line(
    database_url_at_head: str, db: AsyncEngine
) -> None:
    result = await asyncio.to_thread(
        create_admin, database_url_at_head, "boss", "--password", ADMIN_PASSWORD, stdin=""
    )
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
    assert await count_users(db) == 0


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short", "at least 8 characters"), ("iloveyou", "most common"), ("boss-is-me-1", "username")],
)
async def test_weak_passwords_are_refused_like_at_registration(
    database_url_at_head: str, db: AsyncEngine, password: str, problem: str
) -> None:
    result = await asyncio.to_thread(create_admin, database_url_at_head, "boss", stdin=password)
    assert result.returncode == 1
    assert problem in result.stderr and password not in result.stderr
    assert await count_users(db) == 0


async def test_a_taken_username_is_refused(database_url_at_head: str, client: AsyncClient) -> None:
    created = await client.post("/users", json={"username": "boss", "password": "not-admin-pw1"})
    assert created.status_code == 201
    result = await asyncio.to_thread(
        create_admin, database_url_at_head, "boss", stdin=ADMIN_PASSWORD
    )
    assert result.returncode == 1 and "already taken" in result.stderr


def test_on_a_terminal_the_password_is_prompted_twice_unechoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([ADMIN_PASSWORD, ADMIN_PASSWORD, ADMIN_PASSWORD, "typo"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda _prompt="": next(answers))
    assert admin.read_password() == ADMIN_PASSWORD
    with pytest.raises(admin.CommandFailed, match="differ"):
        admin.read_password()
