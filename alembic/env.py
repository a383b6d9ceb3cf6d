"""Alembic environment: async online migrations, offline `--sql`, the app's own DATABASE_URL."""

import asyncio
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from logging.config import fileConfig
from typing import Any

from alembic.operations import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from alembic import context
from app import models  # noqa: F401  (registers the tables on Base.metadata)
from app.config import get_settings
from app.db import Base, create_engine, database_url, is_sqlite

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> URL:
    # `-x`-free override for tools that set sqlalchemy.url; otherwise the app's own setting.
    return database_url(config.get_main_option("sqlalchemy.url") or get_settings().database_url)


def _number_revision(
    _context: MigrationContext, _revision: Any, directives: Iterable[MigrationScript]
) -> None:
    """Give new revisions the next readable id (0003, 0004, ...) unless --rev-id chose one."""
    for script in directives:
        if script.rev_id and re.fullmatch(r"\d{4,}", script.rev_id):
            continue
        known = ScriptDirectory.from_config(config).walk_revisions()
        numbers = [int(r.revision) for r in known if r.revision.isdigit()]
        script.rev_id = f"{max(numbers, default=0) + 1:04d}"


def _configure(target: URL, **options: Any) -> None:
    context.configure(
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=is_sqlite(target),  # SQLite cannot ALTER most things in place
        process_revision_directives=_number_revision,
        **options,
    )


def run_migrations_offline() -> None:
    url = _url()
    _configure(url, url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_with_connection(connection: Connection) -> None:
    _configure(connection.engine.url, connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(get_settings(), _url(), pooled=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with_connection)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed in by code that already holds a connection (tests)
        _run_with_connection(connection)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async())
        return
    # Called from inside a running event loop: asyncio.run would refuse, so use a fresh thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _run_async()).result()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
