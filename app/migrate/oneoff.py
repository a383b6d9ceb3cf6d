"""Open a one-off engine (no pool), run sync work on a connection, dispose it."""

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from app.config import Settings, get_settings
from app.db import create_engine, database_url

T = TypeVar("T")


async def run_on_database(
    work: Callable[[Connection], T], settings: Settings | None = None, *, commit: bool = False
) -> T:
    """`work(connection)` on the configured database (or `settings`'), committing if asked."""
    settings = settings or get_settings()
    engine = create_engine(settings, database_url(settings.database_url), pooled=False)
    try:
        async with engine.connect() as connection:
            result = await connection.run_sync(work)
            if commit:
                await connection.commit()
            return result
    finally:
        await engine.dispose()
