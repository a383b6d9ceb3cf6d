"""What `alembic/env.py` needs beyond Alembic's async template: the URL, the project's options."""

import asyncio
import re
from collections.abc import Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from alembic.config import Config
from alembic.operations import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from app.backend import is_sqlite
from app.config import get_settings
from app.db import database_url
from app.migrate.config import is_bookkeeping_table
from app.models import Base


def target_url(config: Config) -> URL:
    """`sqlalchemy.url` if a tool set one, else the app's own DATABASE_URL."""
    return database_url(config.get_main_option("sqlalchemy.url") or get_settings().database_url)


def configure_options(config: Config, url: URL) -> dict[str, Any]:
    """The project's `context.configure` options, offline and online alike."""

    def number_revision(
        _context: MigrationContext, _revision: Any, directives: Iterable[MigrationScript]
    ) -> None:
        """Give new revisions the next readable id (0003, 0004, ...) unless --rev-id chose one."""
        for script in directives:
            if script.rev_id and re.fullmatch(r"\d{4,}", script.rev_id):
                continue
            known = ScriptDirectory.from_config(config).walk_revisions()
            numbers = [int(r.revision) for r in known if r.revision.isdigit()]
            script.rev_id = f"{max(numbers, default=0) + 1:04d}"

    return {
        "target_metadata": Base.metadata,
        "compare_type": True,
        "render_as_batch": is_sqlite(url),  # SQLite cannot ALTER most things in place
        "process_revision_directives": number_revision,
        "include_name": include_name,
    }


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    # The journal and the archives are bookkeeping, not schema: autogenerate must ignore them.
    return type_ != "table" or not is_bookkeeping_table(name or "")


class _RevisionArgument(Protocol):
    def get_revision_argument(self) -> Any: ...


def changes_revision(context: _RevisionArgument) -> bool:
    """upgrade, downgrade and stamp name a destination; current, check and revision do not."""
    try:
        context.get_revision_argument()
    except KeyError:
        return False
    except Exception:  # a destination alembic resolves later, such as "-1"
        return True
    return True


def run_coroutine(coroutine: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run`, also from code already inside an event loop (in a fresh thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()
