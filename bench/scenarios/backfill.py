"""Scenario `backfill`: revision 0005 keys 1M usernames while the previous release serves.

The previous release (bench/prev_release.py) answers c=16 reads and a trickle of registrations
(which it writes without a key) while `alembic upgrade head` takes 0002 to 0005: a column added
INSTANT, every user keyed in batches, the unique index built online, then the users created
meanwhile keyed too. Reads run as back-to-back wrk runs for as long as the migration takes.
"""

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from bench import harness
from bench.common import MIGRATION_ROWS, OUR_POOL, PASSWORD, Results, our_url, warm
from bench.harness import BIN, ROOT, Server, log

PORT = 18109
CREATE_EVERY_S = 0.5  # a trickle: two registrations a second, each an argon2 hash
PROGRESS = re.compile(r"backfill user_list\.username_key: .*: done")
WINDOW_S = 2  # each wrk run's length: the resolution at which a read spike is placed in time
CONTROL_S = 10  # the load without a migration: long enough for twenty creates


def _creates(url: str, stop: threading.Event, tag: str) -> dict[str, Any]:
    """POST /user/add every CREATE_EVERY_S until `stop`; status counts and latencies, and
    each create's start (perf_counter seconds) with its latency, to place a slow one in time."""
    outcome: dict[str, Any] = {
        "requests": 0, "errors": 0, "max_us": 0, "statuses": {}, "timeline": [],
    }  # fmt: skip
    n = 0
    while not stop.is_set():
        n += 1
        body = json.dumps({"username": f"{tag}{n}", "password": PASSWORD}).encode()
        request = urllib.request.Request(  # noqa: S310 (a local server we started)
            url + "/user/add", data=body, headers={"content-type": "application/json"}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, TimeoutError):
            status = 0
        elapsed_us = int((time.perf_counter() - started) * 1e6)
        outcome["requests"] += 1
        outcome["errors"] += status != 201
        outcome["max_us"] = max(outcome["max_us"], elapsed_us)
        outcome["timeline"].append([started, elapsed_us])
        outcome["statuses"][str(status)] = outcome["statuses"].get(str(status), 0) + 1
        stop.wait(CREATE_EVERY_S)
    return outcome


def _reads_until(url: str, done: threading.Event, rows: int, t0: float) -> dict[str, Any]:
    """Back-to-back wrk runs (c=16 GET /show) until `done`; their sum, the worst latency, and
    each run's start (seconds after `t0`) with its worst latency, to place a spike in time."""
    runs, starts = [], []
    while not done.is_set():
        starts.append(time.perf_counter() - t0)
        runs.append(harness.wrk(url, "show.lua", 16, WINDOW_S, str(rows)))
    return {
        "runs": len(runs),
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "max_us": max((r["max_us"] for r in runs), default=0),
        "p99_us": max((r["p99_us"] for r in runs), default=0),
        "windows": [[round(t, 1), r["max_us"]] for t, r in zip(starts, runs, strict=True)],
    }


def _control(url: str) -> dict[str, Any]:
    """The same load, reads and creates, for CONTROL_S without a migration: what the load
    alone makes of the slowest read and create on these cores, to read the migration's against."""
    done, stop_creates = threading.Event(), threading.Event()
    creates: dict[str, Any] = {}
    creator = threading.Thread(target=lambda: creates.update(_creates(url, stop_creates, "bc")))
    creator.start()
    timer = threading.Timer(CONTROL_S, done.set)
    timer.start()
    try:
        reads = _reads_until(url, done, MIGRATION_ROWS, time.perf_counter())
    finally:
        timer.cancel()
        stop_creates.set()
        creator.join()
    creates.pop("timeline", None)
    return {**reads, "creates": creates}


def _upgrade(url: str, t0: float) -> tuple[float, list[list[Any]]]:
    """`alembic upgrade head`; its wall time, and each stderr line with when it came (after
    `t0`): alembic's "Running upgrade" lines and the backfill's progress mark the phases."""
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 (the project's own alembic)
        [str(BIN / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    lines = [[round(time.perf_counter() - t0, 1), line.rstrip()] for line in process.stderr]
    if process.wait() != 0:
        last = " | ".join(text for _, text in lines[-5:])
        raise RuntimeError(f"alembic upgrade head failed: {last}")
    return time.perf_counter() - started, lines


def phase_at(lines: list[list[Any]], at_s: float) -> str:
    """The last migration output line before `at_s`: what the migration was doing then."""
    before = [line for t, line in lines if t <= at_s]
    return before[-1] if before else "(before the migration started)"


def scenario_backfill(results: Results, secret: str) -> None:
    db = "bench_backfill"
    url = our_url(db)
    log(f"backfill: {MIGRATION_ROWS} users in {db}, 0002 -> 0005 under c=16 reads + creates")
    harness.recreate_mysql_database(db)
    harness.alembic(url, "upgrade", "0002")
    started = time.perf_counter()
    harness.fill_mysql(db, MIGRATION_ROWS, "password_hash", secret, email=False)
    log(f"  filled in {time.perf_counter() - started:.1f} s")
    argv = [
        str(BIN / "uvicorn"), "bench.prev_release:app", "--host", "127.0.0.1",
        "--port", str(PORT), "--workers", "2", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = Server("prev-release-backfill", argv, PORT, {"DATABASE_URL": url, **OUR_POOL})
    server.start()
    timings: dict[str, Any] = {}
    migrated, stop_creates = threading.Event(), threading.Event()
    t0 = 0.0  # when the reads start: the time line's origin

    def migrate() -> None:
        try:
            time.sleep(2)  # the load first, then the migration under it
            timings["upgrade_s"], lines = _upgrade(url, t0)
            timings["progress"] = [line for _, line in lines if PROGRESS.search(line)]
            timings["output"] = lines
        finally:
            migrated.set()

    creates: dict[str, Any] = {}
    try:
        warm(server)
        control = _control(server.url)
        creator = threading.Thread(
            target=lambda: creates.update(_creates(server.url, stop_creates, "bf"))
        )
        creator.start()
        t0 = time.perf_counter()
        migrator = threading.Thread(target=migrate)
        migrator.start()
        load = _reads_until(server.url, migrated, MIGRATION_ROWS, t0)
        migrator.join()
        stop_creates.set()
        creator.join()
        creates["timeline"] = [[round(t - t0, 1), us] for t, us in creates["timeline"]]
        with harness.mysql_connect(db) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM user_list WHERE username_key IS NULL")
            keyless = int(cur.fetchone()[0])
    finally:
        stop_creates.set()
        server.stop()
        harness.drop_mysql_database(db)
    if "upgrade_s" not in timings:
        raise RuntimeError("alembic upgrade head failed in the backfill scenario")
    results["backfill"] = {
        "rows": MIGRATION_ROWS,
        "load": load,
        "creates": creates,
        "control": control,
        "keyless_after": keyless,
        **timings,
    }
    log(f"  0002 -> 0005 {timings['upgrade_s']:.1f} s; reads {load['requests']} "
        f"({load['errors']} failed, max {load['max_us'] / 1000:.0f} ms); creates "
        f"{creates['requests']} ({creates['errors']} failed, max {creates['max_us'] / 1000:.0f} "
        f"ms); {keyless} users created after the last pass without a key")  # fmt: skip
    for line in timings["progress"]:
        log(f"  {line}")
    worst_at, worst_us = max(load["windows"], key=lambda window: window[1])
    log(f"  worst read {worst_us / 1000:.0f} ms in the {WINDOW_S} s from t={worst_at:.0f} s; "
        f"the migration was at: {phase_at(timings['output'], worst_at + WINDOW_S)}")  # fmt: skip
    if creates["timeline"]:
        worst_at, worst_us = max(creates["timeline"], key=lambda create: create[1])
        log(f"  worst create {worst_us / 1000:.0f} ms, sent at t={worst_at:.1f} s; the migration "
            f"was at: {phase_at(timings['output'], worst_at)}")  # fmt: skip
