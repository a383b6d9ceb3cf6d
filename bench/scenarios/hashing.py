"""Scenario `hashing`: the CPU cost of one argon2id hash (and verification) as the service is
configured, and the creates/s ceiling it sets: usable cores / CPU time per hash."""

import time
from collections.abc import Callable

from app.config import get_settings
from app.cpu_limit import available_cpus
from app.hashing import password_hash_from
from bench.common import PASSWORD, Results
from bench.harness import log

SAMPLES = 50


def _per_call(work: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds per call of `work`, over SAMPLES calls after one warm-up."""
    work()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(SAMPLES):
        work()
    return (time.perf_counter() - wall) / SAMPLES, (time.process_time() - cpu) / SAMPLES


def scenario_hashing(results: Results) -> None:
    settings = get_settings()
    hasher = password_hash_from(settings)
    stored = hasher.hash(PASSWORD)
    wall, cpu = _per_call(lambda: hasher.hash(PASSWORD))
    verify_wall, verify_cpu = _per_call(lambda: hasher.verify(PASSWORD, stored))
    # The CPUs the service's hashing pool may use (what HASH_THREADS=0 sizes it from).
    cores = available_cpus()
    parameters = (
        f"m={settings.hash_memory_kib // 1024} MiB, t={settings.hash_time_cost}, "
        f"p={settings.hash_parallelism}"
    )
    results["hashing"] = {
        "wall_s": wall, "cpu_s": cpu, "verify_wall_s": verify_wall, "verify_cpu_s": verify_cpu,
        "cores": cores, "ceiling_per_s": cores / cpu, "parameters": parameters,
    }  # fmt: skip
    log(f"argon2id ({parameters}): {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU per hash, "
        f"{verify_cpu * 1000:.1f} ms CPU per verification; "
        f"ceiling {cores} cores / CPU time = {cores / cpu:.1f} hashes/s")  # fmt: skip
