"""How many CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota.

`os.cpu_count()` counts the host's CPUs. In a container limited to one CPU on a 64-core host it
says 64, and a hashing pool sized from it would start 64 argon2id hashes at once, each walking
its memory cost, on one CPU's worth of time.
"""

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def available_cpus(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> int:
    """The CPUs this process may run on, capped by its cgroup's CPU quota (rounded up)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(cpus, 1)


def cgroup_cpu_quota(
    cgroup_root: Path | None = None, proc_cgroup: Path | None = None
) -> float | None:
    """CPUs' worth of time the process's cgroup may use per period, or None if unlimited.

    cgroup v2: `cpu.max` ("quota period" or "max period") of the process's cgroup and of each
    ancestor, the tightest winning. cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` of the
    cpu controller's group (-1: unlimited).
    """
    cgroup_root = cgroup_root or CGROUP_ROOT
    try:
        lines = (proc_cgroup or PROC_CGROUP).read_text().splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # the v2 unified hierarchy
            quotas += _v2_quotas(cgroup_root, relative)
        elif "cpu" in controllers.split(","):
            quota = _v1_quota(cgroup_root, controllers, relative)
            if quota is not None:
                quotas.append(quota)
    return min(quotas) if quotas else None


def _v2_quotas(root: Path, relative: str) -> list[float]:
    quotas = []
    directory = root / relative
    while True:
        try:
            limit, period = (directory / "cpu.max").read_text().split()
        except (OSError, ValueError):
            pass
        else:
            if limit != "max" and int(period) > 0:
                quotas.append(int(limit) / int(period))
        if directory == root or root not in directory.parents:
            return quotas
        directory = directory.parent


def _v1_quota(root: Path, controllers: str, relative: str) -> float | None:
    for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
        for directory in (mount / relative, mount):
            try:
                quota = int((directory / "cpu.cfs_quota_us").read_text())
                period = int((directory / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            return quota / period if quota > 0 and period > 0 else None
    return None
