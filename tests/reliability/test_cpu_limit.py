"""The hashing pool's size: the CPUs this process may use, never the host's count."""

import os
from pathlib import Path

import pytest

from app import cpu_limit, hashing
from app.config import Settings
from app.cpu_limit import available_cpus, cgroup_cpu_quota
from app.hashing import HashingPool


def cgroup_v2(tmp_path: Path, limits: dict[str, str], own: str = "kubepods/pod1") -> Path:
    """A fake /sys/fs/cgroup (v2) with `cpu.max` files, and a /proc/self/cgroup naming `own`."""
    root = tmp_path / "cgroup"
    (root / own).mkdir(parents=True)
    for relative, value in limits.items():
        (root / relative / "cpu.max").write_text(value + "\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text(f"0::/{own}\n")
    return root


def test_cgroup_v2_quota_is_read_and_the_tightest_ancestor_wins(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, {"kubepods": "150000 100000", "kubepods/pod1": "max 100000"})
    assert cgroup_cpu_quota(root, tmp_path / "proc_cgroup") == 1.5


def test_no_quota_means_no_cap(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, {"kubepods/pod1": "max 100000"})
    assert cgroup_cpu_quota(root, tmp_path / "proc_cgroup") is None
    assert cgroup_cpu_quota(tmp_path / "none", tmp_path / "missing") is None


def test_cgroup_v1_quota_is_read(tmp_path: Path) -> None:
    group = tmp_path / "cgroup" / "cpu,cpuacct" / "docker" / "abc"
    group.mkdir(parents=True)
    (group / "cpu.cfs_quota_us").write_text("50000\n")
    (group / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    assert cgroup_cpu_quota(tmp_path / "cgroup", proc) == 0.5


def test_a_one_cpu_container_on_a_big_host_gets_one_hashing_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: 64 cores visible, a 1-CPU limit: one hash at a time, not 64."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(64)))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    root = cgroup_v2(tmp_path, {"kubepods/pod1": "100000 100000"})
    assert available_cpus(root, tmp_path / "proc_cgroup") == 1
    monkeypatch.setattr(cpu_limit, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpu_limit, "PROC_CGROUP", tmp_path / "proc_cgroup")
    pool = HashingPool(threads=0, wait_s=1, queue_max=1)
    try:
        assert pool.threads == 1
    finally:
        pool.close()


def test_affinity_caps_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    root = cgroup_v2(tmp_path, {"kubepods/pod1": "800000 100000"})  # 8 CPUs of quota
    assert available_cpus(root, tmp_path / "proc_cgroup") == 3
    # A fractional quota rounds up: 2.5 CPUs of time can keep 3 hashes busy part of the time.
    root = cgroup_v2(tmp_path / "b", {"kubepods/pod1": "250000 100000"})
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)))
    assert available_cpus(root, tmp_path / "b" / "proc_cgroup") == 3


def test_every_worker_may_hash_on_every_cpu_through_the_shared_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HASH_THREADS=0: a thread per CPU in this worker, and as many host-wide CPU slots, which
    keep all workers together to one hash per CPU (tests/reliability/test_cpu_slots.py)."""
    monkeypatch.setattr(hashing, "available_cpus", lambda: 3)
    settings = Settings.model_construct(hash_threads=0, hash_cpu_slots_dir=tmp_path)
    pool = HashingPool.from_settings(settings)
    try:
        assert pool.threads == 3
        assert pool.cpu_slots is not None
        assert (pool.cpu_slots.count, pool.cpu_slots.directory) == (3, tmp_path)
    finally:
        pool.close()


def test_an_explicit_thread_count_is_per_worker_and_takes_no_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashing, "available_cpus", lambda: 2)
    settings = Settings.model_construct(hash_threads=3, hash_cpu_slots_dir=tmp_path)
    pool = HashingPool.from_settings(settings)
    try:
        assert (pool.threads, pool.cpu_slots) == (3, None)
    finally:
        pool.close()
