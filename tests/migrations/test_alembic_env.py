"""env.py used from code that already runs an event loop (alembic #1353), on both backends."""

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect

from app.config import Settings
from app.db import create_engine
from app.migrate.config import alembic_config


def _config(**attributes: object) -> Config:
    config = alembic_config()
    config.attributes.update(configure_logger=False, **attributes)
    return config


async def table_names(url: str) -> set[str]:
    """What a fresh connection sees: proves the migration was committed, not just run."""
    engine = create_engine(Settings(database_url=url), pooled=False)
    try:
        async with engine.connect() as connection:
            names: set[str] = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            return names
    finally:
        await engine.dispose()


async def test_upgrade_through_a_handed_in_connection(empty_database_url: str) -> None:
    engine = create_engine(Settings(database_url=empty_database_url), pooled=False)
    try:
        async with engine.connect() as connection:

            def upgrade(sync_connection: Connection) -> bool:
                command.upgrade(_config(connection=sync_connection), "head")
                return inspect(sync_connection).has_table("user_list")

            assert await connection.run_sync(upgrade)
            await connection.commit()
    finally:
        await engine.dispose()
    assert {"user_list", "alembic_version"} <= await table_names(empty_database_url)


async def test_upgrade_called_inside_a_running_loop(empty_database_url: str) -> None:
    # No connection handed in and a loop already running: env.py must not call asyncio.run here.
    config = _config()
    config.set_main_option("sqlalchemy.url", empty_database_url.replace("%", "%%"))
    command.upgrade(config, "head")
    assert {"user_list", "alembic_version"} <= await table_names(empty_database_url)
