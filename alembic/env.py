"""Alembic environment: async online migrations, offline `--sql`, the app's own DATABASE_URL."""

import asyncio
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.operations import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from app import models  # noqa: F401  (registers the tables on Base.metadata)
from app.config import get_settings
from app.db import Base, create_engine, database_url, is_sqlite
from app.migration_archive import is_archive_table
from app.migration_journal import JOURNAL_TABLE
from app.migration_run import guarded_run

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


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    # The journal and the archives are bookkeeping, not schema: autogenerate must ignore them.
    return type_ != "table" or not (name == JOURNAL_TABLE or is_archive_table(name or ""))


def _configure(target: URL, **options: Any) -> None:
    context.configure(
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=is_sqlite(target),  # SQLite cannot ALTER most things in place
        process_revision_directives=_number_revision,
        include_name=_include_name,
        **options,
    )


def run_migrations_offline() -> None:
    url = _url()
    _configure(url, url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _changes_revision() -> bool:
    """upgrade, downgrade and stamp name a destination; current, check and revision do not."""
    try:
        context.get_revision_argument()
    except KeyError:
        return False
    except Exception:  # a destination alembic resolves later, such as "-1"
        return True
    return True


def _run_with_connection(connection: Connection) -> None:
    if not _changes_revision():
        _configure(connection.engine.url, connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Under the migration lock, with bounded DDL lock waits, every step journaled.
    with guarded_run(connection, get_settings(), ScriptDirectory.from_config(config)) as journal:
        _configure(
            connection.engine.url, connection=connection, on_version_apply=journal.on_version_apply
        )
        journal.follow(context.get_context())
        with context.begin_transaction():
            context.run_migrations()


async def _run_async(engine: AsyncEngine | None = None) -> None:
    owned = engine is None
    engine = engine or create_engine(get_settings(), _url(), pooled=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with_connection)
    finally:
        if owned:
            await engine.dispose()


def run_migrations_online() -> None:
    handed_in = config.attributes.get("connection")
    if isinstance(handed_in, Connection):  # code that already holds a connection (tests)
        _run_with_connection(handed_in)
        return
    engine = handed_in if isinstance(handed_in, AsyncEngine) else None  # e.g. pytest-alembic
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async(engine))
        return
    # Called from inside a running event loop: asyncio.run would refuse, so use a fresh thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _run_async(engine)).result()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
