"""Scenario `hashing`: the CPU cost of one argon2id hash, and the creates/s ceiling it sets."""

import os
import time

from app.hashing import default_password_hash
from bench.common import PASSWORD, Results
from bench.harness import log


def scenario_hashing(results: Results) -> None:
    hasher = default_password_hash()
    hasher.hash(PASSWORD)
    n = 20
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        hasher.hash(PASSWORD)
    wall, cpu = (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n
    cores = os.cpu_count() or 1
    results["hashing"] = {
        "wall_s": wall, "cpu_s": cpu, "cores": cores, "ceiling_per_s": cores / cpu,
    }  # fmt: skip
    log(f"argon2id: {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU per hash; "
        f"ceiling {cores} cores / CPU time = {cores / cpu:.1f} hashes/s")  # fmt: skip
