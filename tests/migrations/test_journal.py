"""The migration journal: every step recorded with its file's checksum; edited files flagged."""

import hashlib
import logging
import socket
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from app.migrate.config import PROJECT_ROOT
from app.migrate.journal import app_version
from tests.support import alembic
from tests.support.alembic import copy_project, downgrade, run_module, upgrade, with_database

VERSIONS = PROJECT_ROOT / "alembic" / "versions"


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal(connection: Connection) -> list[dict[str, object]]:
    rows = connection.execute(text("SELECT * FROM migration_journal ORDER BY id"))
    return [dict(r._mapping) for r in rows]


async def test_every_step_is_journaled_with_its_file_checksum(empty_database_url: str) -> None:
    url = empty_database_url
    await alembic.upgrade(url)
    await alembic.downgrade(url, "-1")
    await alembic.upgrade(url)

    rows = await with_database(url, journal)
    assert [(r["revision"], r["direction"], bool(r["success"])) for r in rows] == [
        ("0001", "upgrade", True),
        ("0002", "upgrade", True),
        ("0003", "upgrade", True),
        ("0004", "upgrade", True),
        ("0004", "downgrade", True),
        ("0004", "upgrade", True),
    ]
    files = {path.name[:4]: path for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")}
    assert sorted(files) == ["0001", "0002", "0003", "0004"]
    for row in rows:
        assert row["checksum"] == checksum(files[str(row["revision"])])
        assert row["host"] == socket.gethostname()
        assert row["app_version"] == app_version() != "unknown"
        assert isinstance(row["duration_ms"], int) and row["duration_ms"] >= 0
        assert row["error"] is None
    starts = [str(r["started_at"]) for r in rows]  # ISO timestamps sort as text
    assert starts == sorted(starts)


async def test_journal_cli_shows_steps_and_flags_an_edited_migration(
    empty_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, root = empty_database_url, copy_project(tmp_path)
    await upgrade(url, "head", root)

    shown = run_module(url, "app.migrate", "journal", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert "0001     upgrade" in shown.stdout and "0002     upgrade" in shown.stdout

    edited = root / "alembic" / "versions" / "0002_add_email.py"
    edited.write_text(edited.read_text() + "\n# an edit after the fact\n")
    flagged = run_module(url, "app.migrate", "journal", "--check", cwd=root)
    assert flagged.returncode == 1
    assert "migration 0002 was edited after it was applied" in flagged.stderr

    with caplog.at_level(logging.WARNING, logger="app.migrate.journal"):
        await downgrade(url, "-1", root)
    assert "migration 0002 was edited after it was applied" in caplog.text
