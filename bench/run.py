"""`make bench`: our service against the tutorial's Flask app, scenario by scenario, then report.

Both sides run at once on fresh databases filled the same way; each figure comes from wrk runs
in alternating rounds (ours first in even rounds, the baseline first in odd ones) so that drift
on this shared machine hits both sides alike. Knobs: BENCH_ROUNDS (5), BENCH_SECONDS (3),
BENCH_ROWS (10000), BENCH_MIGRATION_ROWS (1000000, also the backfill's rows), BENCH_GALERA_ROWS
(1000000, the `galera` scenario's, on the cluster of `make galera`). Results go to
bench/out/results.json and docs/benchmarks.md (+ docs/benchmarks.png).

`openloop` (after `mysql`, whose c=64 baseline rate it reads) sends GET /show/{id} at a fixed
rate, 80% of the tutorial's capacity, with bench/openloop.py (latency from each request's due
time: wrk's closed loop hides a stalled server), and reports each side's worker RSS with the
service's GC tuning on and off. BENCH_OPENLOOP_PROCS (1) splits that load over more processes.

BENCH_ONLY runs only the scenarios it names, comma-separated, from hashing, mysql, openloop,
login, latency, observability, sqlite, migration, backfill, galera and adopt (bench/scenarios/;
e.g. `BENCH_ONLY=mysql,latency`). Such a partial run prints its figures as it goes and writes
bench/out/results-partial.json;
docs/benchmarks.md, which needs every scenario, is left as it is.

`adopt` (`python -m app.migrate adopt` on a tutorial database of BENCH_ADOPT_ROWS users, 100,000
by default: some 16 minutes of both cores hashing) is left out of the full run and runs only
when BENCH_ONLY names it; its figures then go to results-partial.json.
"""
# ruff: noqa: S607, RUF001  (runs wrk from PATH; the CPU line has a multiplication sign)

import json
import os
import platform
import subprocess
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

from bench import harness, report
from bench.common import ROUNDS, ROWS, SECONDS, Results, password_hash, prepare_mysql
from bench.harness import ROOT, log
from bench.scenarios.adopt import scenario_adopt
from bench.scenarios.backfill import scenario_backfill
from bench.scenarios.galera import scenario_galera
from bench.scenarios.hashing import scenario_hashing
from bench.scenarios.latency import scenario_latency
from bench.scenarios.login import scenario_login
from bench.scenarios.migration import scenario_migration
from bench.scenarios.mysql import scenario_mysql
from bench.scenarios.observability import scenario_observability
from bench.scenarios.openloop import scenario_openloop
from bench.scenarios.sqlite import scenario_sqlite

# In the order they run (hashing first: the create and login figures are read against it).
SCENARIOS = (
    "hashing",
    "mysql",
    "openloop",
    "login",
    "latency",
    "observability",
    "sqlite",
    "migration",
    "backfill",
    "galera",
    "adopt",
)
# A full run: all but `adopt`, which hashes for a quarter of an hour at its default size.
FULL_RUN = tuple(name for name in SCENARIOS if name != "adopt")


def only_scenarios() -> tuple[str, ...] | None:
    """The scenarios BENCH_ONLY names, in run order; None when it is unset (a full run)."""
    raw = os.environ.get("BENCH_ONLY", "").strip()
    if not raw:
        return None
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = names - set(SCENARIOS)
    if unknown or not names:
        raise SystemExit(
            f"BENCH_ONLY={raw!r}: unknown scenario(s) {', '.join(sorted(unknown)) or '(none)'}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    return tuple(name for name in SCENARIOS if name in names)


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    wrk_out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    wrk_version = wrk_out.split("\n")[0]
    packages = ["fastapi", "starlette", "uvicorn", "uvloop", "sqlalchemy", "aiomysql", "asyncmy",
                "pydantic", "flask", "flask-sqlalchemy", "gunicorn", "pymysql"]  # fmt: skip
    return {
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "mariadb": harness.wait_for_mysql(),
        "wrk": wrk_version.strip(),
        "packages": ", ".join(f"{p} {version(p)}" for p in packages),
    }


def main() -> None:
    only = only_scenarios()
    chosen = only or FULL_RUN
    started = time.time()
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    harness.ensure_wrk()
    results: Results = defaultdict(dict)
    results["machine"] = machine()
    results["config"] = {"rounds": ROUNDS, "seconds": SECONDS, "rows": ROWS}
    if only:
        results["config"]["only"] = list(only)
    secret = password_hash()
    # bench_ours / bench_baseline serve both the direct and the delayed MariaDB scenarios.
    mariadb = bool({"mysql", "openloop", "login", "latency", "observability"} & set(chosen))
    if mariadb:
        prepare_mysql(secret)
    if "hashing" in chosen:
        scenario_hashing(results)
    if "mysql" in chosen:
        scenario_mysql(results)
    if "openloop" in chosen:
        scenario_openloop(results)
    if "login" in chosen:
        scenario_login(results)
    if "latency" in chosen:
        scenario_latency(results)
    if "observability" in chosen:
        scenario_observability(results)
    if "sqlite" in chosen:
        scenario_sqlite(results, secret)
    if "migration" in chosen:
        scenario_migration(results, secret)
    if "backfill" in chosen:
        scenario_backfill(results, secret)
    if "galera" in chosen:
        scenario_galera(results, secret)
    if "adopt" in chosen:
        scenario_adopt(results)
    if mariadb:
        harness.drop_mysql_database("bench_ours")
        harness.drop_mysql_database("bench_baseline")
    results["config"]["elapsed_s"] = time.time() - started
    out = ROOT / "bench" / "out" / ("results-partial.json" if only else "results.json")
    out.write_text(json.dumps(results, indent=1))
    minutes = results["config"]["elapsed_s"] / 60
    if only:
        log(f"done in {minutes:.1f} min (BENCH_ONLY={','.join(only)}): "
            f"{out.relative_to(ROOT)}; docs/benchmarks.md left as it was")  # fmt: skip
        return
    report.write(results)
    log(f"done in {minutes:.1f} min: docs/benchmarks.md")


if __name__ == "__main__":
    main()
