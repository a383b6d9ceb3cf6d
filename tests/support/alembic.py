"""Alembic as the tests drive it: in-process commands, or the CLI as its own process."""

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from app.config import Settings
from app.migrate.config import PROJECT_ROOT, alembic_config, script_directory
from app.migrate.oneoff import run_on_database
from tests.support import backends

T = TypeVar("T")


def revisions() -> list[str]:
    """The project's revisions from base to head."""
    return [r.revision for r in reversed(list(script_directory().walk_revisions()))]


HEAD = revisions()[-1]


def config_for(url: str, project: Path = PROJECT_ROOT) -> Config:
    """The Alembic config of `project` (a copy, in some tests) aimed at `url`."""
    config = alembic_config(project)
    # configparser interpolates '%': escape it so URL-encoded passwords survive.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


async def upgrade(url: str, revision: str = "head", project: Path = PROJECT_ROOT) -> None:
    """In-process `alembic upgrade`; env.py calls asyncio.run, so it runs in a thread."""
    await asyncio.to_thread(command.upgrade, config_for(url, project), revision)


async def downgrade(url: str, revision: str, project: Path = PROJECT_ROOT) -> None:
    await asyncio.to_thread(command.downgrade, config_for(url, project), revision)


def fresh_database_url(backend: str, directory: Path, mysql_database: URL | None) -> str:
    """An empty database on `backend` (sync, for tests that must run outside an event loop)."""
    if backend == "sqlite":
        return backends.sqlite_url(directory)
    assert mysql_database is not None
    asyncio.run(backends.recreate_mysql_database(mysql_database))
    return backends.url_string(backends.with_scheme(backend, mysql_database))


def copy_project(destination: Path) -> Path:
    """A copy of the project's code and migrations, to add or edit a migration in."""
    for name in ("app", "alembic"):
        shutil.copytree(
            PROJECT_ROOT / name, destination / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(PROJECT_ROOT / "alembic.ini", destination / "alembic.ini")
    return destination


def _env(url: str, **settings: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, **{k.upper(): v for k, v in settings.items()}}


def start_alembic(
    url: str, *args: str, cwd: Path = PROJECT_ROOT, **settings: str
) -> subprocess.Popen[str]:
    """`alembic <args>` as its own process, the way a deploy runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "alembic", *args],
        cwd=cwd,
        env=_env(url, **settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_module(
    url: str,
    module: str,
    *args: str,
    cwd: Path = PROJECT_ROOT,
    check: bool = False,
    **settings: str,
) -> subprocess.CompletedProcess[str]:
    """`python -m <module> <args>` against `url` (`settings` as environment variables); with
    `check`, fail the test on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=_env(url, **settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{module} {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def run_alembic(
    url: str, *args: str, cwd: Path = PROJECT_ROOT, check: bool = True, **settings: str
) -> subprocess.CompletedProcess[str]:
    """`alembic <args>` with DATABASE_URL set, exactly as the README tells users to run it."""
    return run_module(url, "alembic", *args, cwd=cwd, check=check, **settings)


async def with_database(url: str, work: Callable[[Connection], T]) -> T:
    """Run `work` on a sync view of a fresh connection to `url`, committing after it."""
    return await run_on_database(work, Settings(database_url=url), commit=True)


def on_database(url: str, work: Callable[[Connection], T]) -> T:
    """`with_database` for sync tests, outside any event loop."""
    return asyncio.run(with_database(url, work))
