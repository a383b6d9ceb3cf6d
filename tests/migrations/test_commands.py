"""Every alembic command the tutorial used with `flask db`, run as a subprocess on both backends."""

from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import database_url
from tests.support.alembic import HEAD, copy_project, run_alembic

AT_HEAD = {"id", "username", "password_hash", "email", "role", "username_key"}


async def columns(url: str) -> set[str] | None:
    """The columns of user_list, or None if the table does not exist."""
    engine = create_async_engine(database_url(url))
    try:
        async with engine.connect() as connection:

            def read(sync_connection):  # type: ignore[no-untyped-def]
                inspector = inspect(sync_connection)
                if not inspector.has_table("user_list"):
                    return None
                return {c["name"] for c in inspector.get_columns("user_list")}

            found: set[str] | None = await connection.run_sync(read)
            return found
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_round_trip(empty_database_url: str) -> None:
    url = empty_database_url
    run_alembic(url, "upgrade", "head")
    assert f"{HEAD} (head)" in run_alembic(url, "current").stdout
    assert await columns(url) == AT_HEAD

    run_alembic(url, "downgrade", "-1")
    assert await columns(url) == AT_HEAD - {"username_key"}
    assert run_alembic(url, "current").stdout.strip().startswith("0004")

    run_alembic(url, "downgrade", "0001")
    assert await columns(url) == {"id", "username", "password_hash"}
    assert run_alembic(url, "current").stdout.strip().startswith("0001")

    run_alembic(url, "downgrade", "base")
    assert await columns(url) is None

    run_alembic(url, "upgrade", "head")
    run_alembic(url, "downgrade", "0001")
    assert await columns(url) == {"id", "username", "password_hash"}
    run_alembic(url, "upgrade", "head")
    assert f"{HEAD} (head)" in run_alembic(url, "current").stdout


async def test_check_finds_no_drift_at_head(database_url_at_head: str) -> None:
    result = run_alembic(database_url_at_head, "check")
    assert "No new upgrade operations detected" in result.stdout + result.stderr


async def test_check_fails_when_behind(database_url_at_head: str) -> None:
    run_alembic(database_url_at_head, "downgrade", "-1")
    result = run_alembic(database_url_at_head, "check", check=False)
    assert result.returncode != 0


async def test_history_show_and_single_head(empty_database_url: str) -> None:
    url = empty_database_url
    history = run_alembic(url, "history").stdout
    assert "<base> -> 0001, create user_list" in history
    assert "0001 -> 0002, add email" in history
    assert "0002 -> 0003, add user_session" in history
    assert "0003 -> 0004, add role" in history
    assert f"-> {HEAD} (head), add username_key" in history
    assert "Revision ID: 0002" in run_alembic(url, "show", "0002").stdout
    assert run_alembic(url, "heads").stdout.split() == [HEAD, "(head)"]


async def test_offline_sql_renders_every_migration(backend: str, empty_database_url: str) -> None:
    sql = run_alembic(empty_database_url, "upgrade", "head", "--sql").stdout
    assert "CREATE TABLE user_list" in sql
    assert "ADD COLUMN email VARCHAR(12)" in sql
    assert "CREATE TABLE IF NOT EXISTS user_session" in sql
    assert "CREATE TABLE IF NOT EXISTS login_throttle" in sql
    assert "ADD COLUMN role VARCHAR(16)" in sql
    assert ("ALGORITHM=INSTANT" in sql) == (backend != "sqlite")
    assert await columns(empty_database_url) is None  # --sql only prints


async def test_autogenerate_detects_a_model_change(
    database_url_at_head: str, tmp_path: Path
) -> None:
    """In a copy of the project: add a column to the model, autogenerate, get the next id."""
    copy_project(tmp_path)
    models = tmp_path / "app" / "models.py"
    email = "    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))\n"
    nickname = "    nickname: Mapped[str | None] = mapped_column(String(20))\n"
    assert email in models.read_text()
    models.write_text(models.read_text().replace(email, email + nickname))
    run_alembic(
        database_url_at_head, "revision", "--autogenerate", "-m", "add nickname", cwd=tmp_path
    )
    created = tmp_path / "alembic" / "versions" / f"{int(HEAD) + 1:04d}_add_nickname.py"
    script = created.read_text()
    assert f"down_revision: str | Sequence[str] | None = '{HEAD}'" in script
    assert "op.add_column('nickname'" in script or "sa.Column('nickname'" in script
    # Rewritten into the lossless forms (app/migrate/autogenerate.py): no batch copy of the table.
    assert "lossless.add_column(revision, 'user_list'" in script
    assert "batch_alter_table" not in script
    assert "drop_table" not in script and "lossless.drop_column" in script
