"""Alembic environment: Alembic's async template, with the app's DATABASE_URL and safe runs.

The project-specific parts (revision numbering, bookkeeping tables, the migration lock, DDL
guard and journal) live in `app.migrate`; this file keeps the template's shape.
"""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.backend import honour_mysql_options_on_mariadb
from app.config import get_settings
from app.db import create_engine
from app.migrate.environment import (
    changes_revision,
    configure_options,
    run_coroutine,
    target_url,
)
from app.migrate.run import guarded_run

config = context.config
honour_mysql_options_on_mariadb()
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_offline() -> None:
    """`--sql`: emit the SQL for the URL's dialect instead of running it."""
    url = target_url(config)
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **configure_options(config, url),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Under the migration lock, with bounded DDL lock waits, every step journaled."""
    script = context.script
    with guarded_run(
        connection, get_settings(), script, changes_revision=changes_revision(context)
    ) as recorder:
        context.configure(
            connection=connection,
            **configure_options(config, connection.engine.url),
            **recorder.options(),
        )
        recorder.follow(context.get_context())
        with context.begin_transaction():
            context.run_migrations()


async def run_async_migrations(engine: AsyncEngine | None = None) -> None:
    connectable = engine or create_engine(get_settings(), target_url(config), pooled=False)
    try:
        async with connectable.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        if engine is None:
            await connectable.dispose()


def run_migrations_online() -> None:
    handed_in = config.attributes.get("connection")
    if isinstance(handed_in, Connection):  # code that already holds a connection (tests)
        do_run_migrations(handed_in)
        return
    # An AsyncEngine handed in (pytest-alembic) is used as is; otherwise a one-off engine.
    run_coroutine(run_async_migrations(handed_in if isinstance(handed_in, AsyncEngine) else None))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
