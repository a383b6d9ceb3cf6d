"""Helpers for the migration tests: sync fresh databases, alembic in-process or as processes."""

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import URL

from app.config import Settings
from app.db import create_engine, database_url
from app.migration_archive import is_archive_table
from app.migration_journal import JOURNAL_TABLE
from app.schema_revision import alembic_config
from tests import backends

T = TypeVar("T")
VERSION_TABLE = "alembic_version"


def fresh_database_url(backend: str, directory: Path, mysql_database: URL | None) -> str:
    """An empty database on `backend` (sync, for tests that must run outside an event loop)."""
    if backend == "sqlite":
        return backends.sqlite_url(directory)
    assert mysql_database is not None
    asyncio.run(backends.recreate_mysql_database(mysql_database))
    return backends.url_string(mysql_database)


def config_for(url: str, project: Path = backends.PROJECT_ROOT) -> Config:
    """The Alembic config of `project` (a copy, in some tests) aimed at `url`."""
    config = alembic_config()
    config.set_main_option("script_location", str(project / "alembic"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str, revision: str = "head", project: Path = backends.PROJECT_ROOT) -> None:
    """In-process `alembic upgrade`: from sync code, or via asyncio.to_thread (env.py runs
    its own event loop)."""
    command.upgrade(config_for(url, project), revision)


def downgrade(url: str, revision: str, project: Path = backends.PROJECT_ROOT) -> None:
    command.downgrade(config_for(url, project), revision)


def copy_project(destination: Path) -> Path:
    """A copy of the project's code and migrations, to add or edit a migration in."""
    for name in ("app", "alembic"):
        shutil.copytree(
            backends.PROJECT_ROOT / name,
            destination / name,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(backends.PROJECT_ROOT / "alembic.ini", destination / "alembic.ini")
    return destination


def alembic_env(url: str, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        **{k.upper(): v for k, v in settings.items()},
    }


def start_alembic(
    url: str, *args: str, cwd: Path = backends.PROJECT_ROOT, **settings: str
) -> subprocess.Popen[str]:
    """`alembic <args>` as its own process, the way a deploy runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "alembic", *args],
        cwd=cwd,
        env=alembic_env(url, **settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_module(
    url: str, module: str, *args: str, cwd: Path = backends.PROJECT_ROOT
) -> subprocess.CompletedProcess[str]:
    """`python -m <module> <args>` against `url`."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=alembic_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def with_database(url: str, work: Callable[[Connection], T]) -> T:
    """Run `work` on a sync view of a fresh connection to `url`, committing after it."""
    engine = create_engine(Settings(database_url=url), database_url(url), pooled=False)
    try:
        async with engine.connect() as connection:
            result = await connection.run_sync(work)
            await connection.commit()
            return result
    finally:
        await engine.dispose()


def on_database(url: str, work: Callable[[Connection], T]) -> T:
    """`with_database` for sync tests, outside any event loop."""
    return asyncio.run(with_database(url, work))


def is_bookkeeping(name: str) -> bool:
    """Alembic's and our own tables, which are not the service's schema."""
    return name in (JOURNAL_TABLE, VERSION_TABLE) or is_archive_table(name)


def schema_snapshot(connection: Connection) -> dict[str, Any]:
    """Everything about the service's tables that a migration can change (archives excluded)."""
    inspector = inspect(connection)
    snapshot: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if is_bookkeeping(table):
            continue
        columns = [
            (
                c["name"],
                str(c["type"].compile(dialect=connection.dialect)),
                c["nullable"],
                c.get("default"),
                c.get("autoincrement"),
            )
            for c in inspector.get_columns(table)
        ]
        snapshot[table] = {
            "columns": columns,
            "pk": inspector.get_pk_constraint(table),
            "unique": sorted(
                (u["name"] or "", tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (i["name"] or "", tuple(str(c) for c in i["column_names"]), i["unique"])
                for i in inspector.get_indexes(table)
            ),
            "foreign_keys": inspector.get_foreign_keys(table),
        }
        if connection.dialect.name == "mysql":
            ddl = connection.exec_driver_sql(f"SHOW CREATE TABLE `{table}`").one()[1]
            snapshot[table]["ddl"] = " ".join(
                part for part in ddl.split() if not part.startswith("AUTO_INCREMENT=")
            )
        elif connection.dialect.name == "sqlite":
            # The DDL as stored; batch mode's rename back quotes the table name, nothing else.
            stored = connection.exec_driver_sql(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? ORDER BY name",
                (table,),
            )
            snapshot[table]["ddl"] = [
                (kind, name, (sql or "").replace(f'"{table}"', table)) for kind, name, sql in stored
            ]
    return snapshot


def table_rows(connection: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of every service table, ordered by its first column."""
    rows = {}
    for table in sorted(inspect(connection).get_table_names()):
        if is_bookkeeping(table):
            continue
        result = connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))
        rows[table] = [dict(r._mapping) for r in result]
    return rows


def insert_sample_rows(connection: Connection, tag: str) -> None:
    """One row in every service table, every column filled with a value of its type."""
    inspector = inspect(connection)
    for table in inspector.get_table_names():
        if is_bookkeeping(table):
            continue
        values: dict[str, Any] = {}
        generated = set(inspector.get_pk_constraint(table)["constrained_columns"])
        for column in inspector.get_columns(table):
            if column["name"] in generated:  # integer primary keys number themselves
                continue
            values[column["name"]] = sample_value(column["type"], tag)
        names = ", ".join(values)
        marks = ", ".join(f":{n}" for n in values)
        connection.execute(
            text(f"INSERT INTO {table} ({names}) VALUES ({marks})"),
            values,
        )


def sample_value(type_: Any, tag: str) -> Any:
    python_type: type | None
    try:
        python_type = type_.python_type
    except NotImplementedError:
        python_type = None
    if python_type is str:
        length = getattr(type_, "length", None) or 40
        return f"{tag}é😀"[:length] if length >= 4 else tag[:length]
    if python_type is int:
        return 7
    if python_type is bool:
        return True
    return f"{tag}"


def column_names(connection: Connection, table: str) -> Sequence[str]:
    return [c["name"] for c in inspect(connection).get_columns(table)]
