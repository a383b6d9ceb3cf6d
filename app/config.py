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
    # Data migrations (app/migrate/backfill.py) write at most this many rows per statement and
    # commit each batch on MySQL/MariaDB, pausing this long between batches to yield to the app.
    # 500: the UPDATE's CASE costs more per row as batches grow (bench/: backfill).
    migration_backfill_batch_size: int = Field(default=500, ge=1, le=5_000)
    migration_backfill_pause_s: float = Field(default=0.0, ge=0.0)
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
    # argon2id cost: OWASP's Password Storage Cheat Sheet configuration m=19 MiB, t=2, p=1
    # (about 20 ms of a core here). Stored hashes made with other values are rehashed with
    # these at the owner's next successful login.
    hash_memory_kib: int = 19_456
    hash_time_cost: int = 2
    hash_parallelism: int = 1
    # Password hashing pool, shared by registration, login and password changes: 0 threads
    # means one per CPU this process may use (affinity and cgroup quota, app/cpu_limit.py).
    # A request waits at most hash_wait_s for a free hasher, and at most hash_queue_max
    # requests wait at once; past either it is answered 503 with Retry-After.
    hash_threads: int = 0
    hash_wait_s: float = 5.0
    hash_queue_max: int = 32
    # Scheduling priority (nice) of the hashing threads; > 0 lets reads take the CPU first.
    hash_thread_nice: int = 0
    # Per-client token bucket on write routes (POST, PATCH, DELETE); 0 turns it off.
    rate_limit_writes_per_minute: int = 0
    rate_limit_burst: int = 20
    # Sessions (ASVS 7.3): a token unused for session_idle_timeout_s, or older than
    # session_absolute_timeout_s however used, no longer authenticates.
    session_idle_timeout_s: int = 1_800
    session_absolute_timeout_s: int = 28_800
    # Login throttling (ASVS 6.3.1): after login_max_failures failed logins for one account
    # within login_failure_window_s, further attempts for it get 429 until the window ends.
    login_max_failures: int = 5
    login_failure_window_s: int = 900
    # Where the failure counts live: the database by default, Redis when this is set
    # (e.g. redis://127.0.0.1:6379/0). Either way every worker and replica shares them.
    redis_url: str | None = None
    redis_key_prefix: str = "user-service:"


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
