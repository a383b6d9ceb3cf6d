"""Scenario `mysql`: reads, creates, a create burst and a read/write mix on MariaDB, both sides."""
# ruff: noqa: S603  (a harness runs local processes)

import json
import os
import statistics
import subprocess
import sys
import threading
from typing import Any

from app.cpu_limit import available_cpus
from bench import harness, report
from bench.common import (
    CONCURRENCY,
    CREATE_CONNS,
    OUR_POOL,
    ROUNDS,
    ROWS,
    SECONDS,
    Results,
    baseline_url,
    compare,
    our_url,
    warm,
)
from bench.harness import ROOT, Server, log, wrk
from bench.scenarios.hashing import ceiling_now
from bench.scenarios.profile import profile_reads


def scenario_mysql(results: Results) -> None:
    ours = harness.uvicorn_server("ours-mariadb", 18101, our_url("bench_ours"), **OUR_POOL).start()
    base_url = baseline_url("bench_baseline")
    base = harness.gunicorn_server("baseline-mariadb", 18102, base_url).start()
    sides = {"ours": ours, "baseline": base}
    try:
        warm(ours, base)
        log("GET /show/{id} on MariaDB")
        for conns in CONCURRENCY:
            compare(results, f"read_mariadb_c{conns}", sides, "show.lua", conns, str(ROWS))
        profile_reads(results, ours)
        log("raw aiomysql ceiling (same SELECT, no HTTP)")
        raw_ceiling(results, ours)
        log("creates with hashing (POST /user/add), the hashing ceiling measured before each round")
        # The ceiling drifts with the machine's load: each round is read against its own.
        ceilings: list[float] = []
        # Creates take seconds each once hashes queue: a 10 s timeout, so none is cut short.
        compare(results, f"create_mariadb_c{CREATE_CONNS}", sides, "create.lua", CREATE_CONNS,
                "c{round}", timeout_s=10, seconds=2 * SECONDS,
                before_round=lambda _r: ceilings.append(ceiling_now()))  # fmt: skip
        results[f"create_mariadb_c{CREATE_CONNS}"]["ceilings"] = ceilings
        creates_against_ceiling(results)
        create_cpu_breakdown(results, ours)
        log("reads during a create burst (and ours with one hashing thread per CPU per worker)")
        per_cpu = per_cpu_hashing_server()
        try:
            create_burst(
                results, {**sides, "ours_hash_threads_per_cpu": per_cpu} if per_cpu else sides
            )
        finally:
            if per_cpu:
                per_cpu.stop()
        log("90/10 read/write mix")
        compare(results, "mix_mariadb_c64", sides, "mix.lua", 64, str(ROWS), "m{round}",
                timeout_s=10, seconds=2 * SECONDS)  # fmt: skip
        asyncmy_variant(results, ours)
    finally:
        ours.stop()
        base.stop()


def creates_against_ceiling(results: Results) -> None:
    """Our creates/s as a share of the hashing ceiling (scenario `hashing`), when measured."""
    ceiling = results.get("hashing", {}).get("ceiling_per_s")
    if not ceiling:
        log("  (run the hashing scenario too for creates/s against the hashing ceiling)")
        return
    entry = results[f"create_mariadb_c{CREATE_CONNS}"]
    rate = statistics.median(r["rps"] for r in entry["rounds"]["ours"])
    paired = report.paired_shares(entry)
    log(f"  ours: {rate:.1f} creates/s = {rate / ceiling:.2f} of the hashing ceiling "
        f"{ceiling:.1f}/s; {statistics.median(paired):.2f} of the ceiling measured before each "
        f"round (before OWASP's parameters: 7.5/s of 8.2/s)")  # fmt: skip


def create_cpu_breakdown(results: Results, ours: Server) -> None:
    """Where one create's CPU goes: the workers' event loops, their hashing threads, MariaDB
    and wrk, over one more create run (not one of the measured rounds)."""
    run, cpu = harness.cpu_per_request_ms(
        ours, lambda: wrk(ours.url, "create.lua", CREATE_CONNS, 2 * SECONDS, "cpu", timeout_s=10)
    )
    results["create_cpu"] = {
        "creates_per_s": run["rps"], **cpu, "foreign_cpu": run["foreign_cpu"],
    }  # fmt: skip
    log("  " + report.create_cpu_line(results["create_cpu"]))


def raw_ceiling(results: Results, ours: Server) -> None:
    """Per round: the raw driver alone, then the API at the same concurrency, back to back."""
    raw: list[dict[str, Any]] = []
    api: list[dict[str, Any]] = []
    for _ in range(ROUNDS):
        with harness.CpuMeter(set(harness.SERVER_GROUPS)) as meter:
            out = subprocess.run(
                [sys.executable, "-m", "bench.raw_driver", "--rows", str(ROWS),
                 "--concurrency", "64", "--seconds", str(SECONDS)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        raw.append({**json.loads(out), "foreign_cpu": meter.foreign_share})
        api.append(wrk(ours.url, "show.lua", 64, SECONDS, str(ROWS)))
    results["raw_aiomysql_c64"] = {"conns": 64, "rounds": {"api": api, "raw": raw}}
    log("  " + report.line("raw_aiomysql_c64", results["raw_aiomysql_c64"]))


def per_cpu_hashing_server() -> Server | None:
    """The service as it was before HASH_THREADS=0 meant a worker's part of the CPUs: one
    hashing thread per CPU in each worker (4 hashes at once on 2 cores with 2 workers). Beside
    the default it shows what the hashing threads' share of the CPU trades: creates during a
    burst against the reads' latency."""
    url = our_url("bench_ours")
    threads = str(available_cpus())
    server = harness.uvicorn_server(
        "ours-hash-per-cpu", 18110, url, **OUR_POOL, HASH_THREADS=threads
    )
    try:
        return server.start()
    except RuntimeError as exc:
        log(f"  skipped: {exc}")
        return None


def create_burst(results: Results, sides: dict[str, Server]) -> None:
    """Per round: reads alone at c=16, then the same reads beside a create burst."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    window = 2 * SECONDS  # creates finish seconds apart: a short window sees a handful
    for r in range(min(ROUNDS, 3)):
        for name, server in sides.items():
            idle = wrk(server.url, "show.lua", 16, window, str(ROWS))
            burst: dict[str, Any] = {}
            workers = server.worker_pids()
            loop0, threads0 = harness.thread_cpu_s(workers)
            writer = threading.Thread(
                target=lambda s=server, p=f"b{r}{name[0]}", out=burst: out.update(
                    creates=wrk(s.url, "create.lua", CREATE_CONNS, window, p, timeout_s=10)
                )
            )
            writer.start()
            reads = wrk(server.url, "show.lua", 16, window, str(ROWS))
            writer.join()
            loop1, threads1 = harness.thread_cpu_s(workers)
            # The share of all cores the service's event loops and its other threads (for ours,
            # the hashing pool) got during the burst: what a nice value or thread count trades.
            cores_s = window * (os.cpu_count() or 1)
            burst["creates"]["loop_share"] = (loop1 - loop0) / cores_s
            burst["creates"]["threads_share"] = (threads1 - threads0) / cores_s
            side = out.setdefault(name, {"idle": [], "burst": [], "creates": []})
            side["idle"].append(idle)
            side["burst"].append(reads)
            side["creates"].append(burst["creates"])
    results["create_burst_c16"] = {"conns": 16, "sides": out}
    for name, side in out.items():
        ratio = statistics.median(
            b["p99_us"] / i["p99_us"] for b, i in zip(side["burst"], side["idle"], strict=True)
        )
        creates = statistics.median(c["rps"] for c in side["creates"])
        hashing = statistics.median(c["threads_share"] for c in side["creates"])
        log(f"  {name}: read p99 during creates / idle read p99 = {ratio:.2f}; "
            f"{creates:.1f} creates/s; other threads {hashing:.0%} of the cores")  # fmt: skip


def asyncmy_variant(results: Results, ours: Server) -> None:
    log("aiomysql vs asyncmy (ours, c=64)")
    url = our_url("bench_ours", driver="asyncmy")
    other = harness.uvicorn_server("ours-asyncmy", 18107, url, **OUR_POOL)
    try:
        other.start()
    except RuntimeError as exc:
        results["driver_c64"] = {"error": str(exc)}
        log(f"  asyncmy did not start: {exc}")
        return
    try:
        warm(other)
        compare(
            results, "driver_c64", {"aiomysql": ours, "asyncmy": other}, "show.lua", 64, str(ROWS)
        )
    finally:
        other.stop()
