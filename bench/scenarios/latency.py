"""Scenario `latency`: MariaDB behind a 5 ms round-trip delay proxy, and round trips per read."""
# ruff: noqa: S603  (a harness runs local processes)

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench import harness
from bench.common import OUR_POOL, ROWS, Results, baseline_url, compare, our_url, warm
from bench.harness import ROOT, Server, log

PROXY_PORT = 13307
RTT_MS = 5.0


def round_trips(proxy_stats: Path, proxy: subprocess.Popen[bytes], server: Server) -> float:
    """Client-to-server chunks through the proxy per request, over 100 sequential GETs."""

    def chunks() -> int:
        proxy.send_signal(10)  # SIGUSR1: dump the counters
        time.sleep(0.3)
        return int(json.loads(proxy_stats.read_text())["client_chunks"])

    for n in range(1, 11):  # warm the pool first: connecting costs round trips too
        urllib.request.urlopen(f"{server.url}/show/{n}").read()  # noqa: S310
    before = chunks()
    for n in range(1, 101):
        urllib.request.urlopen(f"{server.url}/show/{n}").read()  # noqa: S310
    return (chunks() - before) / 100


def scenario_latency(results: Results) -> None:
    stats = ROOT / "bench" / "out" / "proxy-stats.json"
    proxy = subprocess.Popen(
        [sys.executable, "-m", "bench.delay_proxy", "--listen", str(PROXY_PORT),
         "--rtt-ms", str(RTT_MS), "--stats", str(stats)],
        cwd=ROOT,
    )  # fmt: skip
    time.sleep(1)
    ours = harness.uvicorn_server("ours-5ms", 18105, our_url("bench_ours", PROXY_PORT), **OUR_POOL)
    base_url = baseline_url("bench_baseline", PROXY_PORT)
    base = harness.gunicorn_server("baseline-5ms", 18106, base_url)
    direct = harness.uvicorn_server("ours-direct", 18109, our_url("bench_ours"), **OUR_POOL)
    try:
        ours.start()
        base.start()
        direct.start()
        results["round_trips"] = {
            "ours": round_trips(stats, proxy, ours),
            "baseline": round_trips(stats, proxy, base),
        }
        log(f"  database round trips per GET: {results['round_trips']}")
        warm(ours, base, direct)
        log(f"GET /show/{{id}} with {RTT_MS:g} ms database round trip (and ours without it)")
        cpu_before, started = process_cpu_s(proxy.pid), time.monotonic()
        sides = {"ours": ours, "baseline": base, "ours_direct": direct}
        for conns in (64, 256):
            compare(results, f"read_5ms_c{conns}", sides, "show.lua", conns, str(ROWS))
        results["proxy_cpu_share"] = (process_cpu_s(proxy.pid) - cpu_before) / (
            time.monotonic() - started
        )
        log(f"  the delay proxy used {results['proxy_cpu_share']:.0%} of a core meanwhile")
    finally:
        ours.stop()
        base.stop()
        direct.stop()
        proxy.terminate()
        proxy.wait()


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
