"""Prometheus metrics: what each request, pool and hasher is doing, summed over every worker.

The metric objects are module-level, as prometheus-client is built to be used. With
`PROMETHEUS_MULTIPROC_DIR` set (before this module is imported: `python -m app.serve` sets it
and empties it before the workers start) each worker writes its values to files there and a
scrape of any worker reads them all; without it the figures are this process's alone.
Per-request cost is two counter increments and a histogram observation; the pool and hashing
gauges are sampled once a second rather than touched on every checkout.
"""

import asyncio
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.migrate.config import script_directory

if TYPE_CHECKING:
    from app.state import AppState

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_INTERVAL_S = 1.0
# One label for every request no route served (404s, refusals before routing): a scan of
# random paths adds no series.
UNMATCHED_ROUTE = "<unmatched>"

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer",
    ["method", "route", "status"],
)
GC_PAUSES = Histogram(
    "user_service_gc_pause_seconds",
    "Garbage collections and how long each held the worker (all its requests) still",
    ["generation"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)
REFUSED = Counter(
    "user_service_refused_total",
    "Requests the service refused to serve in full: 408/413/429/431/503, and why",
    ["status", "reason"],
)
POOL_IN_USE = Gauge(
    "user_service_db_connections_in_use",
    "Database connections checked out of the pool",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "user_service_db_connections_waiting",
    "Requests waiting for a database connection",
    ["pool"],
    multiprocess_mode="livesum",
)
HASH_QUEUE = Gauge(
    "user_service_hashing_queue_depth",
    "Requests waiting for a free password hasher",
    multiprocess_mode="livesum",
)
SCHEMA = Gauge(
    "user_service_schema_info",
    "The database's Alembic revision and the code's head (1 for the current pair)",
    ["database_revision", "code_revision"],
    multiprocess_mode="livemostrecent",
)
DATABASE_UP = Gauge(
    "user_service_database_reachable",
    "1 if the last check reached the database",
    multiprocess_mode="livemostrecent",
)
MIGRATION_STEPS = Gauge(
    "user_service_migration_steps",
    "Migration steps in the migration journal, by direction and outcome",
    ["direction", "result"],
    multiprocess_mode="livemostrecent",
)
MIGRATION_LAST = Gauge(
    "user_service_migration_last_step_timestamp_seconds",
    "When the journal's latest migration step started (Unix time)",
    multiprocess_mode="livemostrecent",
)


def observe_gc_pause(generation: int, seconds: float) -> None:
    GC_PAUSES.labels(str(generation)).observe(seconds)


def is_multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    code = str(status)
    REQUESTS.labels(method, route, code).inc()
    LATENCY.labels(method, route, code).observe(seconds)


def count_refusal(status: int, reason: str) -> None:
    REFUSED.labels(str(status), reason).inc()


def set_schema_revision(database_revision: str | None, code_revision: str) -> None:
    """Point the schema info metric at this pair; every other revision the code knows reads 0.

    Setting each known pair, rather than remembering the last one, keeps no state in the module.
    """
    current = database_revision or "none"
    known = {"none", current, *(r.revision for r in script_directory().walk_revisions())}
    for revision in known:
        SCHEMA.labels(revision, code_revision).set(1 if revision == current else 0)


def set_database_reachable(reachable: bool) -> None:
    DATABASE_UP.set(1 if reachable else 0)


def set_migration_journal(rows: Sequence[tuple[str, bool, int, datetime | None]]) -> None:
    """(direction, success, count, latest start) per group of journal rows."""
    counts = {(d, r): 0 for d in ("upgrade", "downgrade", "stamp") for r in ("ok", "failed")}
    latest: datetime | None = None
    for direction, success, count, started in rows:
        counts[(direction, "ok" if success else "failed")] = count
        if started is not None and (latest is None or started > latest):
            latest = started
    for (direction, result), count in counts.items():  # every series, zeros included
        MIGRATION_STEPS.labels(direction, result).set(count)
    if latest is not None:
        MIGRATION_LAST.set(latest.replace(tzinfo=UTC).timestamp())


def sample_runtime(state: "AppState") -> None:
    """Copy the pools' and the hashers' current figures into the gauges."""
    pool = state.engine.sync_engine.pool
    POOL_IN_USE.labels("main").set(getattr(pool, "checkedout", lambda: 0)())
    POOL_WAITING.labels("main").set(getattr(pool, "waiting", 0))
    if state.read_pool is not None:
        POOL_IN_USE.labels("read").set(state.read_pool.in_use)
        POOL_WAITING.labels("read").set(state.read_pool.waiting)
    HASH_QUEUE.set(state.hasher.waiting)


async def _sample_forever(state: "AppState", interval_s: float) -> None:
    while True:
        try:
            sample_runtime(state)
        except Exception:  # a metric must never take the service down
            logger.exception("could not sample the pool and hashing gauges")
        await asyncio.sleep(interval_s)


@asynccontextmanager
async def sampling(state: "AppState", interval_s: float = SAMPLE_INTERVAL_S) -> AsyncIterator[None]:
    """For the life of the app: sample the gauges; at exit, retire this process's live gauges."""
    if not is_multiprocess() and multiprocessing.parent_process() is not None:
        logger.warning(
            "metrics: this looks like one of several workers but %s is not set, so each "
            "worker reports only its own figures; start with `python -m app.serve`",
            MULTIPROC_ENV,
        )
    task = asyncio.create_task(_sample_forever(state, interval_s), name="metrics-sampler")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        if is_multiprocess():
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def render() -> tuple[bytes, str]:
    """The exposition text of every worker (or of this process alone) and its content type."""
    if is_multiprocess():
        registry: Any = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
