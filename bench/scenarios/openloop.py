"""Scenario `openloop`: GET /show/{id} on MariaDB at a fixed rate (80% of the tutorial's c=64
capacity), latency from each request's due time; and the workers' memory, GC tuning on and off."""

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import harness, report
from bench.common import (
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
from bench.harness import Server, log, wrk

OFFERED_SHARE = 0.8  # of the tutorial's closed-loop capacity
CONNS = 64
# GC tuning off (app/gc_tuning.py): no freeze, CPython's own gen-0 threshold of 700.
GC_OFF = {"GC_FREEZE": "false", "GC_GEN0_THRESHOLD": "0"}


def scenario_openloop(results: Results) -> None:
    # Ports of their own (18121-18123), so a `BENCH_ONLY=mysql` run beside it does not collide.
    ours = harness.uvicorn_server("ours-openloop", 18121, our_url("bench_ours"), **OUR_POOL)
    base = harness.gunicorn_server("baseline-openloop", 18122, baseline_url("bench_baseline"))
    gc_off = harness.uvicorn_server(
        "ours-gc-off", 18123, our_url("bench_ours"), **OUR_POOL, **GC_OFF
    )
    sides = {"ours": ours, "baseline": base, "ours_gc_off": gc_off}
    try:
        for server in sides.values():
            server.start()
        warm(*sides.values())
        log("GET /show/{id} c=64 closed-loop, with GC tuning off as a third side: req/s, p99, RSS")
        compare(results, "memory_c64", sides, "show.lua", CONNS, str(ROWS))
        capacity, source = tutorial_capacity(results)
        rate = OFFERED_SHARE * capacity
        log(f"open loop at {rate:,.0f} req/s = {OFFERED_SHARE:.0%} of the tutorial's "
            f"{capacity:,.0f} req/s ({source})")  # fmt: skip
        entry: dict[str, Any] = {
            "conns": CONNS,
            "rate": rate,
            "share": OFFERED_SHARE,
            "capacity": capacity,
            "capacity_from": source,
            "rounds": {},
        }
        results["openloop_c64"] = entry
        fixed_rate_rounds(entry, sides, rate)
        log("  " + report.openloop_line(entry))
    finally:
        for server in sides.values():
            server.stop()
    log("garbage collections during a c=64 read run, GC tuning on and off (metrics on)")
    entry["gc_pauses"] = {
        "ours": gc_pauses_under_load("ours-gc-metrics", {}),
        "ours_gc_off": gc_pauses_under_load("ours-gc-off-metrics", GC_OFF),
    }
    log("  " + report.gc_pauses_line(entry["gc_pauses"]))


def gc_pauses_under_load(name: str, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """A server of its own with metrics on (the measured sides run without, like the others),
    scraped after one c=64 read run."""
    server = harness.uvicorn_server(
        name, 18124, our_url("bench_ours"), **OUR_POOL, **env, METRICS_ENABLED="true"
    )
    server.start()
    try:
        wrk(server.url, "show.lua", CONNS, 2 * SECONDS, str(ROWS))
        return gc_pauses(server)
    finally:
        server.stop()


def gc_pauses(server: Server) -> dict[str, dict[str, float]]:
    """One worker's garbage collections over this scenario, by generation: how many, their
    total and the bucket bound of the longest (the service's `user_service_gc_pause_seconds`;
    without PROMETHEUS_MULTIPROC_DIR a scrape answers for the worker that takes it)."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as answer:  # noqa: S310
        text = answer.read().decode()
    pauses: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "user_service_gc_pause_seconds":
            continue
        for sample in family.samples:
            entry = pauses.setdefault(sample.labels["generation"], {"longest_le": 0.0})
            if sample.name.endswith("_count"):
                entry["count"] = sample.value
            elif sample.name.endswith("_sum"):
                entry["total_s"] = sample.value
            elif sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                below = pauses[sample.labels["generation"]].get("_below", 0.0)
                if sample.value > below and bound > entry["longest_le"]:
                    entry["longest_le"] = bound
                entry["_below"] = sample.value
    for entry in pauses.values():
        entry.pop("_below", None)
    return pauses


def tutorial_capacity(results: Results) -> tuple[float, str]:
    """The baseline's median c=64 req/s: from the `mysql` scenario of this run when it ran,
    else from this scenario's own closed-loop rounds."""
    if "read_mariadb_c64" in results:
        runs = results["read_mariadb_c64"]["rounds"]["baseline"]
        return report.med(runs), "GET /show c=64 in this run's mysql scenario"
    runs = results["memory_c64"]["rounds"]["baseline"]
    return report.med(runs), "GET /show c=64 in this scenario (the mysql scenario did not run)"


def fixed_rate_rounds(entry: dict[str, Any], sides: dict[str, Server], rate: float) -> None:
    """ROUNDS alternating rounds of the open-loop run against each side, 2 x BENCH_SECONDS each
    (about 2 x 5,000 requests at the tutorial's rate, so p99.9 rests on some ten of them)."""
    names = list(sides)
    for r in range(ROUNDS):
        for name in names if r % 2 == 0 else names[::-1]:
            server = sides[name]
            run = harness.openloop(
                server.url, rate, 2 * SECONDS, CONNS, ROWS,
                midway=lambda s=server: harness.connections_per_worker(s),
            )  # fmt: skip
            run["conns_per_worker"] = run.pop("midway")
            run["rss_kib"] = harness.worker_rss_kib(server)
            entry["rounds"].setdefault(name, []).append(run)
