"""Where the migrations live and which tables are bookkeeping rather than the service's schema."""

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime
from sqlalchemy.dialects import mysql

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
VERSION_TABLE = "alembic_version"
JOURNAL_TABLE = "migration_journal"
ARCHIVE_PREFIX = "migration_archive_"
# The register of archives (when each was made, what its rows refer to, the id high-water
# mark): no trailing underscore, so it is not itself taken for an archive.
CATALOG_TABLE = "migration_archives"
# Galera's migration lock: one lease row per locked database (app/migrate/lease.py).
LOCK_TABLE = "migration_lock"
# When a bookkeeping row was written: to the microsecond on MySQL/MariaDB too (their DATETIME
# drops fractions by default), so rows written in one second keep their order.
BOOKKEEPING_TIMESTAMP = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def alembic_config(project: Path = PROJECT_ROOT) -> Config:
    """The project's Alembic configuration, wherever the process was started from."""
    config = Config(str(project / "alembic.ini"))
    config.set_main_option("script_location", str(project / "alembic"))
    return config


@lru_cache
def script_directory() -> ScriptDirectory:
    """The project's revisions (read once per process)."""
    return ScriptDirectory.from_config(alembic_config())


def is_archive_table(name: str) -> bool:
    return name.startswith(ARCHIVE_PREFIX)


def is_bookkeeping_table(name: str) -> bool:
    """Alembic's and our own tables, which are not the service's schema."""
    bookkeeping = (VERSION_TABLE, JOURNAL_TABLE, CATALOG_TABLE, LOCK_TABLE)
    return name in bookkeeping or is_archive_table(name)
