"""Scenario `hashing`: the CPU cost of one argon2id hash (and verification) as the service is
configured, and the creates/s ceiling it sets: usable cores / CPU time per hash.

The CPU time per hash is taken twice: one hash at a time, and with every usable core hashing at
once, as during a burst of creates. Each argon2id hash walks 19 MiB, so hashes running side by
side share the memory bandwidth and the last-level cache, and each takes more CPU time than alone;
the ceiling the creates are read against is the one the cores reach together.
"""

import threading
import time
from collections.abc import Callable

from app.config import get_settings
from app.cpu_limit import available_cpus
from app.hashing import password_hash_from
from bench.common import PASSWORD, Results
from bench.harness import log

SAMPLES = 50
PARALLEL_S = 4.0  # each core hashes this long in the all-cores measurement


def _per_call(work: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds per call of `work`, over SAMPLES calls after one warm-up."""
    work()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(SAMPLES):
        work()
    return (time.perf_counter() - wall) / SAMPLES, (time.process_time() - cpu) / SAMPLES


def all_cores_cpu_per_hash(
    work: Callable[[], object], threads: int, seconds: float = PARALLEL_S
) -> float:
    """CPU seconds per call of `work` while `threads` threads call it at once (argon2 releases
    the GIL), over `seconds`."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def hash_until_stop(slot: int) -> None:
        while time.perf_counter() < stop:
            work()
            counts[slot] += 1

    cpu = time.process_time()
    workers = [threading.Thread(target=hash_until_stop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.process_time() - cpu) / max(1, sum(counts))


def ceiling_now(seconds: float = 3.0) -> float:
    """Hashes/s the usable cores make together now: the ceiling, measured again beside a run.
    On a shared machine it moves by several per cent from minute to minute (109.8-125.6/s
    within two here), so a create run is best read against one taken just before it."""
    hasher = password_hash_from(get_settings())
    cores = available_cpus()
    return cores / all_cores_cpu_per_hash(lambda: hasher.hash(PASSWORD), cores, seconds)


def scenario_hashing(results: Results) -> None:
    settings = get_settings()
    hasher = password_hash_from(settings)
    stored = hasher.hash(PASSWORD)
    wall, cpu = _per_call(lambda: hasher.hash(PASSWORD))
    verify_wall, verify_cpu = _per_call(lambda: hasher.verify(PASSWORD, stored))
    # The CPUs the service's hashing pools may use: HASH_THREADS=0 shares them among the
    # workers, so the service runs as many hashes at once as this measurement does.
    cores = available_cpus()
    shared_cpu = all_cores_cpu_per_hash(lambda: hasher.hash(PASSWORD), cores)
    parameters = (
        f"m={settings.hash_memory_kib // 1024} MiB, t={settings.hash_time_cost}, "
        f"p={settings.hash_parallelism}"
    )
    results["hashing"] = {
        "wall_s": wall, "cpu_s": cpu, "verify_wall_s": verify_wall, "verify_cpu_s": verify_cpu,
        "cores": cores, "parameters": parameters,
        "alone_ceiling_per_s": cores / cpu, "shared_cpu_s": shared_cpu,
        "ceiling_per_s": cores / shared_cpu,
    }  # fmt: skip
    log(f"argon2id ({parameters}): {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU per hash, "
        f"{verify_cpu * 1000:.1f} ms CPU per verification; {shared_cpu * 1000:.1f} ms CPU per "
        f"hash with {cores} cores hashing at once; ceiling {cores} cores / CPU time = "
        f"{cores / shared_cpu:.1f} hashes/s ({cores / cpu:.1f}/s alone)")  # fmt: skip
