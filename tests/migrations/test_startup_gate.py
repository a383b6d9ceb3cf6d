"""The start-up gate: the service refuses a database whose schema is not the code's head."""

import logging
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import create_engine
from app.main import create_app
from app.migrate.config import PROJECT_ROOT
from app.migrate.gate import SchemaMismatch
from tests.support.alembic import downgrade, upgrade
from tests.support.net import free_port


async def start(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass


async def test_empty_database_refuses_to_start(empty_database_url: str) -> None:
    with pytest.raises(SchemaMismatch, match=r"empty.*run `alembic upgrade head`"):
        await start(Settings(database_url=empty_database_url))


async def test_database_behind_code_refuses_to_start(empty_database_url: str) -> None:
    await upgrade(empty_database_url, "0001")
    with pytest.raises(SchemaMismatch, match=r"behind the code.*0001.*0004.*alembic upgrade head"):
        await start(Settings(database_url=empty_database_url))


async def test_database_at_head_starts(database_url_at_head: str) -> None:
    await start(Settings(database_url=database_url_at_head))


async def test_downgraded_database_refuses_to_start(database_url_at_head: str) -> None:
    await downgrade(database_url_at_head, "base")
    with pytest.raises(SchemaMismatch, match="alembic upgrade head"):
        await start(Settings(database_url=database_url_at_head))


async def _pretend_newer_revision(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await engine.dispose()


async def test_newer_schema_refuses_by_default(settings: Settings) -> None:
    await _pretend_newer_revision(settings)
    with pytest.raises(SchemaMismatch, match=r"newer than this code.*SCHEMA_AHEAD_POLICY=warn"):
        await start(settings)


async def test_newer_schema_starts_with_warning_when_allowed(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await _pretend_newer_revision(settings)
    caplog.set_level(logging.WARNING)
    await start(settings.model_copy(update={"schema_ahead_policy": "warn"}))
    assert "9999 is newer than this code" in caplog.text


async def test_health_says_schema_ahead_of_code(settings: Settings) -> None:
    from httpx import ASGITransport, AsyncClient

    await _pretend_newer_revision(settings)
    app = create_app(settings.model_copy(update={"schema_ahead_policy": "warn"}))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        body = (await client.get("/health")).json()
    assert body["revision"] == "9999" and body["schema_matches_code"] is False


def test_uvicorn_exits_naming_the_fix_on_an_empty_database(tmp_path: object) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(free_port())],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "alembic upgrade head" in result.stderr
