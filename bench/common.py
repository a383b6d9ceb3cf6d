"""What every scenario shares: the knobs, database URLs and fills, and the paired wrk rounds."""
# ruff: noqa: S105  (a bench password)

import os
from collections.abc import Callable
from typing import Any

from app.config import get_settings
from app.hashing import password_hash_from
from bench import harness, report
from bench.harness import Server, log, wrk

# Many short rounds rather than a few long ones: on a shared machine a pair of runs back to back
# sees the same background load, and the median of more pairs shrugs off a busy moment.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
ROWS = int(os.environ.get("BENCH_ROWS", "10000"))
MIGRATION_ROWS = int(os.environ.get("BENCH_MIGRATION_ROWS", "1000000"))
CONCURRENCY = (16, 64, 256)
PASSWORD = "b3nch-Pw9q"  # fits the baseline's varchar(10), passes our password rules
CREATE_CONNS = 8  # 2 workers x 2 hashing threads, twice over: enough to keep every core hashing

Results = dict[str, Any]


# The service's pool for these runs: 20 steady connections per worker and no overflow. The
# default (10 + 10 overflow) opens and closes overflow connections all the time under steady
# load (~20 new connections a second in a c=64 read run), each costing several round trips.
OUR_POOL = {"DB_POOL_SIZE": "20", "DB_MAX_OVERFLOW": "0"}


def our_url(database: str, port: int = 3306, driver: str = "aiomysql") -> str:
    return f"mysql+{driver}://root@127.0.0.1:{port}/{database}"


def baseline_url(database: str, port: int = 3306) -> str:
    return f"mysql+pymysql://root@127.0.0.1:{port}/{database}"


def password_hash() -> str:
    """PASSWORD hashed as the service hashes it (its settings here: no rehash at login)."""
    return password_hash_from(get_settings()).hash(PASSWORD)


def prepare_mysql(secret: str) -> None:
    log(f"fresh MariaDB databases bench_ours / bench_baseline with {ROWS} users each")
    harness.recreate_mysql_database("bench_ours")
    harness.alembic(our_url("bench_ours"), "upgrade", "head")
    harness.fill_mysql("bench_ours", ROWS, "password_hash", secret, email=True)
    harness.recreate_mysql_database("bench_baseline")
    harness.create_baseline_schema(baseline_url("bench_baseline"))
    harness.fill_mysql("bench_baseline", ROWS, "password", PASSWORD, email=True)


def compare(
    results: Results,
    key: str,
    sides: dict[str, Server],
    script: str,
    conns: int,
    *args: str,
    timeout_s: int = 2,
    seconds: int = SECONDS,
    before_round: Callable[[int], None] | None = None,
) -> None:
    """ROUNDS alternating rounds of the same wrk run against each side (`before_round(r)`
    first, if given); each run also keeps the side's worker RSS at its end (`rss_kib`, one
    entry a worker)."""
    runs = results.setdefault(key, {"conns": conns, "script": script, "rounds": {}})["rounds"]
    names = list(sides)
    for r in range(ROUNDS):
        if before_round is not None:
            before_round(r)
        for name in names if r % 2 == 0 else names[::-1]:
            extra = [a.replace("{round}", f"{r}{name[0]}") for a in args]
            run = wrk(sides[name].url, script, conns, seconds, *extra, timeout_s=timeout_s)
            run["rss_kib"] = harness.worker_rss_kib(sides[name])
            runs.setdefault(name, []).append(run)
    log("  " + report.line(key, results[key]))


def warm(*servers: Server, script: str = "show.lua") -> None:
    for server in servers:
        wrk(server.url, script, 16, 2, str(ROWS))
