"""The hashing pool's size: the CPUs this process may use, never the host's count."""

import os
from pathlib import Path

import pytest
import uvicorn
from pydantic import ValidationError

from app import cpu_limit, hashing, serve
from app.config import Settings, get_settings
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


@pytest.mark.parametrize(
    ("cpus", "workers", "threads"),
    [(2, 1, 2), (2, 2, 1), (4, 3, 2), (2, 4, 1), (64, 8, 8)],
)
def test_workers_share_the_cpus_among_their_hashing_threads(
    monkeypatch: pytest.MonkeyPatch, cpus: int, workers: int, threads: int
) -> None:
    """HASH_THREADS=0: each worker takes its part of the CPUs, rounded up, so that 2 workers on
    2 CPUs run 2 hashes at once, not 4 (one per CPU in every worker)."""
    monkeypatch.setattr(hashing, "available_cpus", lambda: cpus)
    settings = Settings.model_construct(hash_threads=0, web_concurrency=workers)
    pool = HashingPool.from_settings(settings)
    try:
        assert pool.threads == threads
    finally:
        pool.close()


def test_an_explicit_thread_count_is_per_worker_whatever_the_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hashing, "available_cpus", lambda: 2)
    pool = HashingPool.from_settings(Settings.model_construct(hash_threads=3, web_concurrency=2))
    try:
        assert pool.threads == 3
    finally:
        pool.close()


def test_the_worker_count_is_read_from_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert Settings(_env_file=None).web_concurrency == 4


def test_app_serve_tells_its_workers_how_many_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m app.serve --workers 3` exports WEB_CONCURRENCY=3 for the workers it starts."""
    seen: dict[str, str | None] = {}
    monkeypatch.setenv("WEB_CONCURRENCY", "1")  # and restored after main() changes it
    monkeypatch.setenv("METRICS_ENABLED", "false")
    get_settings.cache_clear()
    monkeypatch.setattr(
        uvicorn, "run", lambda *_a, **_k: seen.update(env=os.environ.get("WEB_CONCURRENCY"))
    )
    try:
        assert serve.main(["--workers", "3"]) == 0
    finally:
        get_settings.cache_clear()
    assert seen["env"] == "3"


def test_a_worker_count_below_one_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, web_concurrency=0)
    assert "web_concurrency" in str(raised.value)
