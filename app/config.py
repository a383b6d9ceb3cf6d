"""Service configuration: one pydantic-settings class read from the environment or `.env`."""

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A list setting is written comma-separated in the environment: ALLOWED_HOSTS=a.example,b.example
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Every knob of the service; the app and `alembic/env.py` both read it.

    Numbers are bounded and an unknown name in `.env` is refused, so a typo or a negative
    timeout stops the service at start instead of being ignored. Errors never echo the values
    (a mistyped `DATABASE_URL` carries a password).
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="allow", hide_input_in_errors=True
    )

    database_url: str = "sqlite+aiosqlite:///./app.db"
    # SQLite: how long a writer waits for another writer's lock before failing.
    sqlite_busy_timeout_ms: NonNegativeInt = 10_000
    # Migrations (docs/migrations.md). How long a second `alembic upgrade` waits for the one
    # already migrating this database before giving up.
    migration_lock_timeout_s: PositiveFloat = 300.0
    # Galera: the migration lock is a lease in a table, renewed every third of this; a holder
    # that died without releasing it is taken over once it expires.
    migration_lock_lease_s: PositiveFloat = 30.0
    # MySQL/MariaDB: each DDL statement waits at most this long for its table lock (whole
    # seconds: lock_wait_timeout), and is retried with doubling pauses up to ddl_max_attempts.
    ddl_lock_wait_timeout_s: PositiveInt = 2
    ddl_max_attempts: PositiveInt = 8
    ddl_retry_backoff_s: PositiveFloat = 0.5
    ddl_retry_backoff_max_s: PositiveFloat = 8.0
    # ALTERs that would copy or rebuild a table are refused unless this is set.
    migration_allow_table_copy: bool = False
    # Migrations that cannot be reversed without losing data refuse unless this is set.
    migration_allow_data_loss: bool = False
    # Data migrations (app/migrate/backfill.py) write at most this many rows per statement and
    # commit each batch on MySQL/MariaDB, pausing this long between batches to yield to the app.
    # 500: the UPDATE's CASE costs more per row as batches grow (bench/: backfill).
    migration_backfill_batch_size: int = Field(default=500, ge=1, le=5_000)
    migration_backfill_pause_s: float = Field(default=0.0, ge=0.0)
    # upgrade/downgrade refuse to run while an applied migration's file, or a migration module
    # it calls, differs from what the journal recorded; this lets one run accept the change
    # (journaled as an `override` row).
    migration_allow_edited: bool = False
    # What a downgrade archived is kept this many days; `python -m app.migrate archive purge
    # --expired --yes` (run it daily) drops older archives.
    archive_max_age_days: int = Field(default=30, ge=1)
    # Bounds on waiting for the database, so a dead database gives a quick 503, never a hang.
    db_connect_timeout_s: PositiveFloat = 2.0
    db_pool_timeout_s: PositiveFloat = 2.0
    # A fixed pool: overflow connections opened and closed ~20 times a second under steady load
    # (bench/), on SQLite a thread and a file open each. The read-only routes get a read pool
    # of the same size (autocommit on MySQL/MariaDB, query_only on SQLite).
    db_pool_size: PositiveInt = 20
    db_max_overflow: Annotated[int, Field(ge=-1)] = 0  # -1: no limit (SQLAlchemy)
    # Recycle pooled MySQL connections before the server's wait_timeout drops them.
    db_pool_recycle_s: PositiveInt = 1800
    # A Galera cluster (docs/scaling.md): its other nodes as host:port, tried when the URL's
    # host is down or not Synced. Writes go to the first live node in this order, reads rotate
    # over all of them; a connection made while a node was skipped is replaced after
    # db_failover_recycle_s, so traffic returns to a node that rejoined.
    database_failover_hosts: CommaList = Field(default=[])
    db_failover_recycle_s: PositiveFloat = 30.0
    # Galera: wsrep_sync_wait for every connection (1: a read first waits until this node has
    # applied what the cluster committed before it, so a client reads its own writes through
    # any node; 0: reads may lag a write made through another node by a few milliseconds).
    db_galera_sync_wait: Annotated[int, Field(ge=0, le=15)] = 1
    # What to do when the database carries a revision this code does not know (rolling deploys).
    schema_ahead_policy: Literal["refuse", "warn"] = "refuse"
    # Hardening (issue 4). Request bodies above this many bytes are answered 413.
    max_body_bytes: PositiveInt = 16_384
    # Every request is answered within this many seconds (503 past it): a stalled database
    # cannot hold a request, its connection and its client forever.
    request_timeout_s: PositiveFloat = 10.0
    # argon2id cost: OWASP's Password Storage Cheat Sheet configuration m=19 MiB, t=2, p=1
    # (about 20 ms of a core here). Stored hashes made with other values are rehashed with
    # these at the owner's next successful login.
    hash_memory_kib: Annotated[int, Field(ge=8)] = 19_456
    hash_time_cost: PositiveInt = 2
    hash_parallelism: PositiveInt = 1
    # Password hashing pool, shared by registration, login and password changes. 0 threads
    # means one per CPU this process may use (affinity and cgroup quota, app/cpu_limit.py) in
    # every worker, with one lock file per CPU in hash_cpu_slots_dir held by each running hash
    # (app/cpu_slots.py): whichever worker holds the clients' connections may use every CPU, and
    # all workers together run one hash per CPU. Split per worker instead (CPUs / workers), a
    # worker holding all 8 connections of a create run left a CPU idle: half the creates/s;
    # one per CPU in every worker without the slots ran 4 hashes on 2 cores, 20% more CPU per
    # hash. n > 0 threads: n in this worker, no slots.
    # A request waits at most hash_wait_s for a free hasher, and at most hash_queue_max
    # requests wait at once; past either it is answered 503 with Retry-After.
    hash_threads: NonNegativeInt = 0
    hash_wait_s: PositiveFloat = 5.0
    hash_queue_max: NonNegativeInt = 32
    # Scheduling priority (nice) of the hashing threads; > 0 lets reads take the CPU first.
    # 0 by default: with one hasher per CPU, a worker's loop and its hasher share a CPU evenly
    # when both want it; nice 10 cut the creates during a burst to about a quarter.
    hash_thread_nice: Annotated[int, Field(ge=0, le=19)] = 0
    # Where the hashing CPU slots' lock files live (unset: <tmp>/user-service-cpu-slots-<uid>);
    # every worker on the host sharing its CPUs must name the same directory.
    hash_cpu_slots_dir: Path | None = None
    # Worker processes `python -m app.serve` starts unless --workers says otherwise (uvicorn's
    # own --workers reads WEB_CONCURRENCY too); nothing inside a worker depends on it.
    web_concurrency: Annotated[int, Field(ge=1, le=1024)] = 1
    # Per-client token bucket on write routes (POST, PATCH, DELETE); 0 turns it off.
    rate_limit_writes_per_minute: NonNegativeInt = 0
    rate_limit_burst: PositiveInt = 20
    # Sessions (ASVS 7.3): a token unused for session_idle_timeout_s, or older than
    # session_absolute_timeout_s however used, no longer authenticates.
    session_idle_timeout_s: PositiveInt = 1_800
    session_absolute_timeout_s: PositiveInt = 28_800
    # Login throttling (ASVS 6.3.1): after login_max_failures failed logins for one account
    # within login_failure_window_s, further attempts for it get 429 until the window ends.
    login_max_failures: PositiveInt = 5
    login_failure_window_s: PositiveInt = 900
    # Where the failure counts and the write rate limits live: the database (failed logins) and
    # each worker's memory (rate limits) by default; Redis when this is set
    # (e.g. redis://127.0.0.1:6379/0), so every worker and replica shares them.
    redis_url: str | None = None
    redis_key_prefix: str = "user-service:"

    # Garbage collection (app/gc_tuning.py): freeze what start-up built, and let this many
    # allocations pass between young-generation collections (0: CPython's default, 700).
    gc_freeze: bool = True
    gc_gen0_threshold: Annotated[int, Field(ge=0, le=10_000_000)] = 50_000

    # --- Operations (issue 12): logs, metrics, probes, the edge, shared limits. README's
    # "Running it in production" says how they fit together.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # json: one JSON object per line (time, level, logger, message, request_id); text for a
    # person at a terminal.
    log_format: Literal["json", "text"] = "json"
    # One line per request (method, route template, status, duration) from the app itself;
    # uvicorn's own access log is turned off, it knows neither the route nor the request id.
    access_log: bool = True
    # Prometheus text at GET /metrics on the service's port, for these client networks only.
    metrics_enabled: bool = True
    metrics_allowed_networks: CommaList = Field(
        default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    )
    # Host header values served (Starlette's TrustedHostMiddleware: "*.example.com" patterns,
    # "*" for any); every other Host gets a 400. The probes answer whatever the Host.
    allowed_hosts: CommaList = Field(default=["localhost", "127.0.0.1", "[::1]"])
    # /docs, /redoc and /openapi.json.
    docs_enabled: bool = True
    # python -m app.serve: a request line and headers above this many bytes get a 431; a client
    # that has not sent its whole header block within header_timeout_s is cut off (408).
    max_header_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 16_384
    header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    keep_alive_timeout_s: Annotated[int, Field(ge=1, le=300)] = 5
    # Proxies whose X-Forwarded-For/-Proto is believed (addresses or networks, uvicorn's
    # --forwarded-allow-ips); empty: nobody's, the peer address is the client.
    forwarded_allow_ips: CommaList = Field(default=[])
    # Prefix of every rate-limit key in Redis (services sharing one Redis keep apart).
    rate_limit_key_prefix: Annotated[str, Field(min_length=1, max_length=64)] = "user-service"

    @field_validator(
        "metrics_allowed_networks",
        "allowed_hosts",
        "forwarded_allow_ips",
        "database_failover_hosts",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("metrics_allowed_networks", "forwarded_allow_ips")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item != "*":
                ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _no_unknown_settings(self) -> Self:
        unknown = sorted(name.upper() for name in self.model_extra or {})
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(unknown)}: a typo? (README.md lists every setting)"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
