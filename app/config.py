"""Service configuration: one pydantic-settings class read from the environment or `.env`."""

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; the app and `alembic/env.py` both read it."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./app.db"
    # SQLite: how long a writer waits for another writer's lock before failing.
    sqlite_busy_timeout_ms: int = 10_000
    # Migrations (docs/migrations.md). How long a second `alembic upgrade` waits for the one
    # already migrating this database before giving up.
    migration_lock_timeout_s: float = 300.0
    # MySQL/MariaDB: each DDL statement waits at most this long for its table lock (whole
    # seconds: lock_wait_timeout), and is retried with doubling pauses up to ddl_max_attempts.
    ddl_lock_wait_timeout_s: int = 2
    ddl_max_attempts: int = 8
    ddl_retry_backoff_s: float = 0.5
    ddl_retry_backoff_max_s: float = 8.0
    # ALTERs that would copy or rebuild a table are refused unless this is set.
    migration_allow_table_copy: bool = False
    # Migrations that cannot be reversed without losing data refuse unless this is set.
    migration_allow_data_loss: bool = False
    # upgrade/downgrade refuse to run while an applied migration's file, or a migration module
    # it calls, differs from what the journal recorded; this lets one run accept the change
    # (journaled as an `override` row).
    migration_allow_edited: bool = False
    # What a downgrade archived is kept this many days; `python -m app.migrate archive purge
    # --expired --yes` (run it daily) drops older archives.
    archive_max_age_days: int = Field(default=30, ge=1)
    # Bounds on waiting for the database, so a dead database gives a quick 503, never a hang.
    db_connect_timeout_s: float = 2.0
    db_pool_timeout_s: float = 2.0
    # A fixed pool: overflow connections opened and closed ~20 times a second under steady load
    # (bench/). MySQL/MariaDB also get an autocommit read pool of the same size.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    # Recycle pooled MySQL connections before the server's wait_timeout drops them.
    db_pool_recycle_s: int = 1800
    # What to do when the database carries a revision this code does not know (rolling deploys).
    schema_ahead_policy: Literal["refuse", "warn"] = "refuse"
    # Hardening (issue 4). Request bodies above this many bytes are answered 413.
    max_body_bytes: int = 16_384
    # Every request is answered within this many seconds (503 past it): a stalled database
    # cannot hold a request, its connection and its client forever.
    request_timeout_s: float = 10.0
    # Password hashing pool: 0 threads means one per CPU. A request waits at most
    # hash_wait_s for a free hasher, and at most hash_queue_max requests wait at once;
    # past either it is answered 503 with Retry-After. An argon2id hash costs ~0.25 s of a
    # core, so a full queue drains in about the wait on two cores.
    hash_threads: int = 0
    hash_wait_s: float = 5.0
    hash_queue_max: int = 32
    # Scheduling priority (nice) of the hashing threads; > 0 lets reads take the CPU first.
    hash_thread_nice: int = 0
    # Per-client token bucket on write routes (POST, PATCH, DELETE); 0 turns it off.
    rate_limit_writes_per_minute: int = 0
    rate_limit_burst: int = 20


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
