"""Scenario `adopt`: `python -m app.migrate adopt` takes over a tutorial database on MariaDB.

The tutorial's table as its Flask app makes it (bench/baseline), a Flask-Migrate revision in
alembic_version, BENCH_ADOPT_ROWS users (100,000) with the plaintext PASSWORD; then the command,
timed: wall time, users per second, and the share the argon2id hashing takes. At ~19 ms of CPU
per hash, 100,000 users keep both cores busy for 16 minutes or more (500 users took 8.7 s, 57
users/s, 98% of it hashing, on a shared two-core machine: half an hour for 100,000), so a full
`make bench` leaves this scenario out: it runs when BENCH_ONLY names it.
"""

import os
import re
import subprocess
import time

from bench import harness
from bench.common import PASSWORD, Results, baseline_url, our_url
from bench.harness import BIN, ROOT, log

ROWS = int(os.environ.get("BENCH_ADOPT_ROWS", "100000"))
# Not bench_*: named like the adoption's own throwaway databases.
DATABASE = "adopt_bench"
FLASK_MIGRATE_REVISION = "3f1c2b9a7d4e"  # an id as Flask-Migrate makes them: 12 hex digits
DONE = re.compile(r"adopted: (\d+) users .*; ([\d.]+) s, hashing ([\d.]+) s")


def _recreate(drop_only: bool = False) -> None:
    with harness.mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        if not drop_only:
            cur.execute(f"CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4")


def _tutorial_database() -> None:
    """The baseline app's own table (with email), its users, a Flask-Migrate revision."""
    _recreate()
    harness.create_baseline_schema(baseline_url(DATABASE))
    harness.fill_mysql(DATABASE, ROWS, "password", PASSWORD, email=True)
    with harness.mysql_connect(DATABASE) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        cur.execute("INSERT INTO alembic_version VALUES (%s)", (FLASK_MIGRATE_REVISION,))


def scenario_adopt(results: Results) -> None:
    log(f"adopt: a tutorial database of {ROWS:,} users taken over (argon2id for each)")
    _tutorial_database()
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (the project's own command)
        [str(BIN / "python"), "-m", "app.migrate", "adopt"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": our_url(DATABASE)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall_s = time.perf_counter() - started
    found = DONE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"adopt failed ({done.returncode}): {done.stderr[-2000:]}")
    users, command_s, hashing_s = int(found[1]), float(found[2]), float(found[3])
    results["adopt"] = {
        "rows": users,
        "wall_s": wall_s,  # the process, start-up included
        "command_s": command_s,  # from the plan to the end, as the command reports it
        "rows_per_s": users / command_s if command_s else 0.0,
        "hashing_s": hashing_s,
        "hashing_share": hashing_s / command_s if command_s else 0.0,
        "cpus": os.cpu_count(),
    }
    log(f"  {users:,} users in {command_s:.1f} s ({users / max(command_s, 1e-9):,.0f}/s), "
        f"hashing {hashing_s:.1f} s ({100 * hashing_s / max(command_s, 1e-9):.0f}%); process "
        f"{wall_s:.1f} s")  # fmt: skip
    _recreate(drop_only=True)
