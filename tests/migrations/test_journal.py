"""The migration journal: every step recorded and hash-chained; tampering and edits detected."""

import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from app.migrate.config import PROJECT_ROOT
from app.migrate.journal import ADDED_COLUMNS, app_version
from app.migrate.journal_chain import GENESIS
from tests.support import alembic
from tests.support.alembic import (
    HEAD,
    copy_project,
    revisions,
    run_alembic,
    run_module,
    upgrade,
    with_database,
)

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
        *((revision, "upgrade", True) for revision in revisions()),
        (HEAD, "downgrade", True),
        (HEAD, "upgrade", True),
    ]
    files = {r: next(VERSIONS.glob(f"{r}_*.py")) for r in revisions()}
    for row in rows:
        assert row["checksum"] == checksum(files[str(row["revision"])])
        assert row["host"] == socket.gethostname()
        assert row["app_version"] == app_version() != "unknown"
        assert isinstance(row["duration_ms"], int) and row["duration_ms"] >= 0
        assert row["error"] is None
    starts = [str(r["started_at"]) for r in rows]  # ISO timestamps sort as text
    assert starts == sorted(starts)
    # Chained: each row names the hash of the one before it.
    assert [r["prev_hash"] for r in rows] == [GENESIS] + [r["row_hash"] for r in rows[:-1]]
    # 0002 calls the archive helpers and app.backend: their checksums are recorded with it.
    modules = json.loads(str(rows[1]["modules"]))
    archive = PROJECT_ROOT / "app" / "migrate" / "archive.py"
    assert modules["app.migrate.archive"] == checksum(archive)
    assert modules["app.backend"] == checksum(PROJECT_ROOT / "app" / "backend.py")
    assert "app.config" not in modules  # settings are not migration code


async def test_journal_cli_shows_steps_and_check_passes_when_intact(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    await alembic.upgrade(url)
    await alembic.downgrade(url, "-1")
    await alembic.upgrade(url)

    shown = run_module(url, "app.migrate", "journal")
    assert shown.returncode == 0, shown.stderr
    assert "0001     upgrade" in shown.stdout and f"{HEAD}     downgrade" in shown.stdout
    checked = run_module(url, "app.migrate", "journal", "--check")
    last = (await with_database(url, journal))[-1]["row_hash"]
    assert checked.returncode == 0, checked.stderr
    rows = len(revisions()) + 2
    assert f"journal intact: {rows} rows chained, last hash {last}" in checked.stdout


def tamper(statement: str) -> Callable[[Connection], None]:
    def work(connection: Connection) -> None:
        connection.execute(text(statement))

    return work


async def check_finds(url: str, *expected: str, cwd: Path = PROJECT_ROOT) -> None:
    flagged = run_module(url, "app.migrate", "journal", "--check", cwd=cwd)
    assert flagged.returncode == 1, flagged.stdout
    for problem in expected:
        assert problem in flagged.stderr, flagged.stderr


async def test_check_detects_a_rewritten_checksum(empty_database_url: str) -> None:
    url = empty_database_url
    await alembic.upgrade(url)
    await with_database(url, tamper("UPDATE migration_journal SET checksum = 'x' WHERE id = 2"))
    await check_finds(url, "PROBLEM: journal row 2 (0002 upgrade, ", "was changed after it was")


async def test_check_detects_a_deleted_row(empty_database_url: str) -> None:
    url = empty_database_url
    await alembic.upgrade(url)
    await alembic.downgrade(url, "-1")
    await alembic.upgrade(url)
    await with_database(url, tamper("DELETE FROM migration_journal WHERE id = 2"))
    await check_finds(url, f"journal row 3 ({revisions()[2]} upgrade, ", "does not follow row 1")


async def test_check_detects_rows_deleted_from_the_end_and_an_emptied_journal(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    await alembic.upgrade(url)
    last = len(revisions())
    await with_database(url, tamper(f"DELETE FROM migration_journal WHERE id = {last}"))
    await check_finds(
        url,
        f"the journal leaves the database at {revisions()[-2]}, but alembic_version says {HEAD}",
    )
    await with_database(url, tamper("DELETE FROM migration_journal"))
    await check_finds(url, "the journal leaves the database at base, but alembic_version says")


def version(connection: Connection) -> str | None:
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def test_an_edited_applied_migration_stops_upgrade_and_downgrade_unless_overridden(
    empty_database_url: str, tmp_path: Path
) -> None:
    url, root = empty_database_url, copy_project(tmp_path)
    await upgrade(url, "0002", root)  # so that `downgrade -1` is 0002's own
    edited = root / "alembic" / "versions" / "0002_add_email.py"
    edited.write_text(edited.read_text() + "\n# an edit after the fact\n")

    for command in (["downgrade", "-1"], ["upgrade", "head"]):
        refused = run_alembic(url, *command, cwd=root, check=False)
        assert refused.returncode != 0
        assert (
            "migration 0002 (alembic/versions/0002_add_email.py) changed since it was applied"
            in refused.stderr
        )
        assert "MIGRATION_ALLOW_EDITED=1" in refused.stderr
        assert "Traceback" not in refused.stderr
    await check_finds(url, "alembic/versions/0002_add_email.py (sha256 ", cwd=root)
    assert await with_database(url, version) == "0002"

    run_alembic(url, "downgrade", "-1", cwd=root, migration_allow_edited="1")
    rows = await with_database(url, journal)
    override, downgraded = rows[-2], rows[-1]
    assert (override["revision"], override["direction"]) == ("0002", "override")
    assert str(override["note"]).startswith("MIGRATION_ALLOW_EDITED=1: migration 0002 (alembic")
    assert override["checksum"] == checksum(edited) == downgraded["checksum"]
    assert (downgraded["revision"], downgraded["direction"]) == ("0002", "downgrade")
    # The override is part of the chain, and the edit is now the accepted version.
    run_alembic(url, "upgrade", "head", cwd=root)
    assert run_module(url, "app.migrate", "journal", "--check", cwd=root).returncode == 0


async def test_a_changed_migration_module_stops_the_run_naming_the_file(
    empty_database_url: str, tmp_path: Path
) -> None:
    """0002's downgrade relies on the archive helpers: changing them changes what it does."""
    url, root = empty_database_url, copy_project(tmp_path)
    await upgrade(url, "0002", root)
    helpers = root / "app" / "migrate" / "archive.py"
    helpers.write_text(helpers.read_text() + "\n# a change to what downgrades do\n")

    flagged = run_module(url, "app.migrate", "journal", "--check", cwd=root)
    assert flagged.returncode == 1
    assert "app/migrate/archive.py, which it calls (sha256 " in flagged.stderr
    refused = run_alembic(url, "downgrade", "-1", cwd=root, check=False)
    assert refused.returncode != 0
    assert "app/migrate/archive.py, which it calls" in refused.stderr
    assert await with_database(url, version) == "0002"


async def test_a_release_that_changes_the_settings_module_still_migrates(
    empty_database_url: str, tmp_path: Path
) -> None:
    """0005 reads its batch size from the settings: a later release that adds a setting
    edits app/config.py, and that must not make 0005 look edited (it blocked every upgrade
    and downgrade of a database that had run 0005 until MIGRATION_ALLOW_EDITED=1)."""
    url, root = empty_database_url, copy_project(tmp_path)
    await upgrade(url, "head", root)
    settings = root / "app" / "config.py"
    settings.write_text(settings.read_text() + "\n# a setting added by a later release\n")

    assert run_module(url, "app.migrate", "journal", "--check", cwd=root).returncode == 0
    run_alembic(url, "downgrade", "-1", cwd=root)
    run_alembic(url, "upgrade", "head", cwd=root)
    assert await with_database(url, version) == HEAD


async def test_a_journal_that_recorded_the_settings_module_is_not_refused_for_it(
    empty_database_url: str, tmp_path: Path
) -> None:
    """Journals written before settings stopped counting hold app.config among 0005's
    modules: a changed settings module is not an edit for them either."""
    url, root = empty_database_url, copy_project(tmp_path)
    checksums = root / "app" / "migrate" / "checksums.py"
    current = checksums.read_text()
    # The code before the fix: settings counted like any module a revision imports.
    checksums.write_text(
        current.replace('RUN_INPUTS = frozenset({"app.config"})', "RUN_INPUTS = frozenset()")
    )
    run_alembic(url, "upgrade", "head", cwd=root)  # in a process of its own: the copy's code
    assert "app.config" in await with_database(url, modules_of_0005)
    checksums.write_text(current)
    settings = root / "app" / "config.py"
    settings.write_text(settings.read_text() + "\n# a setting added by a later release\n")

    run_alembic(url, "downgrade", "-1", cwd=root)
    assert await with_database(url, version) == "0004"


def modules_of_0005(connection: Connection) -> dict[str, str]:
    recorded = connection.execute(
        text("SELECT modules FROM migration_journal WHERE revision = '0005'")
    ).scalar_one()
    return dict(json.loads(recorded))


async def test_a_journal_written_by_older_code_is_extended_and_sealed(
    empty_database_url: str, backend: str
) -> None:
    url = empty_database_url
    await alembic.upgrade(url)
    if backend == "sqlite":
        drops = [f"ALTER TABLE migration_journal DROP COLUMN {c}" for c in ADDED_COLUMNS]
    else:
        columns = ", ".join(f"DROP COLUMN {c}" for c in ADDED_COLUMNS)
        drops = [f"ALTER TABLE migration_journal {columns}"]
    for statement in drops:  # the journal as the code before the hash chain made it
        await with_database(url, tamper(statement))
    await check_finds(url, "journal row 1 (0001 upgrade, ", "carries no hash")

    await alembic.downgrade(url, "-1")  # any run of this code adds the columns and seals
    rows = await with_database(url, journal)
    assert [r["direction"] for r in rows] == ["upgrade"] * len(revisions()) + ["downgrade"]
    assert all(r["row_hash"] for r in rows)
    assert run_module(url, "app.migrate", "journal", "--check").returncode == 0


def test_alembic_still_has_the_private_hook_the_journal_follows() -> None:
    """The journal wraps MigrationContext._migrations_fn to see each step start (pyproject
    bounds alembic below 2); this fails first if an Alembic release renames it."""
    context = MigrationContext.configure(dialect_name="sqlite")
    assert hasattr(context, "_migrations_fn")
