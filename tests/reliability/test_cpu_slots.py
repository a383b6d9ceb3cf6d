"""Hashing CPU slots: whichever worker holds the clients hashes on every CPU, and all workers
together never run more hashes than CPUs, even after a holder is killed."""

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app import hashing
from app.config import Settings
from app.cpu_slots import CpuSlots
from app.hashing import HashingPool

HASH_S = 0.15


class Concurrency:
    """A stand-in hash scheme that takes HASH_S and records how many of its hashes overlap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0

    def hash(self, password: str) -> str:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(HASH_S)
        with self._lock:
            self.running -= 1
        return f"hashed:{len(password)}"


def worker_pool(settings: Settings, scheme: Concurrency) -> HashingPool:
    """One uvicorn worker's pool as the lifespan builds it, hashing with `scheme`."""
    pool = HashingPool.from_settings(settings)
    pool.password_hash = scheme  # type: ignore[assignment]  # duck-typed: only .hash is called
    return pool


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "available_cpus", lambda: 2)


@pytest.mark.usefixtures("two_cpus")
async def test_a_worker_holding_every_client_hashes_on_every_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 workers on 2 CPUs, all 8 connections on one of them (as uvicorn's accepts left them in
    a create run): that worker runs 2 hashes at once, not its half of the CPUs."""
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    settings = Settings(_env_file=None, hash_threads=0, hash_cpu_slots_dir=tmp_path)
    scheme = Concurrency()
    busy, idle = worker_pool(settings, scheme), worker_pool(settings, scheme)
    try:
        started = time.monotonic()
        await asyncio.gather(*(busy.hash(f"password-{i}") for i in range(8)))
        elapsed = time.monotonic() - started
    finally:
        busy.close()
        idle.close()
    assert scheme.most == 2
    assert elapsed < 6 * HASH_S, f"8 hashes on 2 CPUs took {elapsed:.2f} s"


@pytest.mark.usefixtures("two_cpus")
async def test_workers_together_never_run_more_hashes_than_cpus(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, hash_threads=0, hash_cpu_slots_dir=tmp_path)
    scheme = Concurrency()
    workers = [worker_pool(settings, scheme) for _ in range(3)]
    try:
        await asyncio.gather(*(w.hash(f"password-{i}") for w in workers for i in range(4)))
    finally:
        for worker in workers:
            worker.close()
    assert scheme.most == 2


HOLD_BOTH = """
import sys, time
from pathlib import Path
from app.cpu_slots import CpuSlots
slots = CpuSlots(Path(sys.argv[1]), 2)
held = [slots.wait_home(), slots.try_borrow()]
print("holding" if all(held) else "not holding", flush=True)
time.sleep(60)
"""


def test_a_killed_holder_frees_its_cpus(tmp_path: Path) -> None:
    """flock locks go with their process: a worker killed mid-hash leaves no CPU taken."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_BOTH, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        slots = CpuSlots(tmp_path, 2)
        assert slots.try_borrow() is None
        taken = threading.Event()

        def take() -> None:
            slots.wait_home().release()
            taken.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert not taken.wait(0.3), "a slot was taken while the holder held both"
        holder.kill()
        assert taken.wait(5), "the killed holder's slots stayed taken"
    finally:
        holder.kill()
        holder.wait()


def test_a_directory_of_another_user_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone could make /tmp/user-service-cpu-slots-<uid> first and hold every slot in it."""
    if os.getuid() != 0:
        pytest.skip("only root can give a directory to another user")
    foreign = tmp_path / "slots"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)
    with pytest.raises(PermissionError):
        CpuSlots(foreign, 2)
    settings = Settings(_env_file=None, hash_threads=0, hash_cpu_slots_dir=foreign)
    with caplog.at_level(logging.WARNING, logger="app.hashing"):
        pool = HashingPool.from_settings(settings)
    pool.close()
    assert pool.cpu_slots is None
    assert "hashing CPU slots unavailable" in caplog.text


@pytest.mark.usefixtures("two_cpus")
async def test_hashes_given_up_leave_no_cpu_taken(tmp_path: Path) -> None:
    """Requests cancelled (their deadline) while their hashes wait for a CPU, run on a
    borrowed one or queue at home: once the hashes end, every CPU slot is free again."""
    settings = Settings(_env_file=None, hash_threads=0, hash_cpu_slots_dir=tmp_path)
    pool = worker_pool(settings, Concurrency())
    other = CpuSlots(tmp_path, 2)
    try:
        hashes = [asyncio.create_task(pool.hash(f"password-{i}")) for i in range(6)]
        await asyncio.sleep(HASH_S / 2)
        for task in hashes[1::2]:
            task.cancel()
        await asyncio.gather(*hashes, return_exceptions=True)
        await asyncio.sleep(HASH_S)
        pool.close()
        home = await asyncio.wait_for(asyncio.to_thread(other.wait_home), 2 * HASH_S)
        borrowed = other.try_borrow()
        assert borrowed is not None, "a cancelled hash kept a CPU slot"
        home.release()
        borrowed.release()
    finally:
        pool.close()
        other.close()
