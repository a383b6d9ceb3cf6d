"""One module answers "which backend is this": both MariaDB schemes get INSTANT, env.py no web."""

import ast
import subprocess
import sys
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, event
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import make_url

from app import backend as backends_module
from app.config import Settings
from app.db import create_engine
from app.migrate.config import PROJECT_ROOT
from tests.support.alembic import config_for, with_database


@pytest.mark.parametrize(
    ("url", "is_mysql", "is_sqlite"),
    [
        ("mysql+aiomysql://root@h/db", True, False),
        ("mariadb+aiomysql://root@h/db", True, False),
        ("sqlite+aiosqlite:///x.db", False, True),
        ("postgresql+asyncpg://u@h/db", False, False),
    ],
)
def test_backend_of_a_url(url: str, is_mysql: bool, is_sqlite: bool) -> None:
    parsed = make_url(url)
    assert backends_module.is_mysql(parsed) is is_mysql
    assert backends_module.is_sqlite(parsed) is is_sqlite


def test_instant_depends_on_the_server_not_the_scheme() -> None:
    dialect = mysql.dialect()
    dialect.server_version_info = (10, 11, 9)
    dialect.is_mariadb = True
    assert backends_module.instant_clause(dialect) == ", ALGORITHM=INSTANT"
    dialect.server_version_info = (10, 3, 30)
    assert backends_module.instant_clause(dialect) == ""
    oracle = mysql.dialect()
    oracle.server_version_info = (8, 0, 28)
    assert backends_module.instant_clause(oracle) == ""
    oracle.server_version_info = (8, 0, 35)
    assert backends_module.instant_clause(oracle) == ", ALGORITHM=INSTANT"
    assert backends_module.instant_clause(sqlite.dialect()) == ""


async def test_online_upgrade_adds_email_with_instant(
    backend: str, empty_database_url: str
) -> None:
    if backend == "sqlite":
        pytest.skip("ALGORITHM applies to MySQL/MariaDB only")
    engine = create_engine(Settings(database_url=empty_database_url), pooled=False)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def upgrade(connection: Connection) -> None:
        config = config_for(empty_database_url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    try:
        async with engine.connect() as connection:
            await connection.run_sync(upgrade)
            await connection.commit()
    finally:
        await engine.dispose()
    add_email = [s for s in statements if "ADD COLUMN email" in s]
    assert add_email and all("ALGORITHM=INSTANT" in s for s in add_email), add_email


def env_imports() -> str:
    """The import statements of alembic/env.py, as source."""
    tree = ast.parse((PROJECT_ROOT / "alembic" / "env.py").read_text())
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return "\n".join(ast.unparse(n) for n in imports if getattr(n, "module", "") != "alembic")


def test_env_imports_do_not_load_fastapi() -> None:
    source = env_imports()
    assert "app." in source  # the check would prove nothing if env.py imported nothing of ours
    probe = f"import sys\n{source}\nprint('fastapi' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "False", result.stderr


def username_collation(connection: Connection) -> str:
    query = (
        "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'user_list' AND COLUMN_NAME = 'username'"
    )
    return str(connection.exec_driver_sql(query).scalar_one())


async def test_usernames_compare_byte_wise_under_either_scheme(
    backend: str, database_url_at_head: str
) -> None:
    # The test databases default to utf8mb4_unicode_ci: only the table's own options give bin.
    if backend == "sqlite":
        pytest.skip("SQLite compares with BINARY unless told otherwise")
    assert await with_database(database_url_at_head, username_collation) == "utf8mb4_bin"
