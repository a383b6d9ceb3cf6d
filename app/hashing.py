"""Password hashing and verifying with argon2id in a bounded thread pool that the lifespan owns.

Each argon2id hash or verification costs a slice of a core and its memory cost in RAM, so they
run on at most `threads` threads; a burst of registrations or logins waits briefly for a hasher
and is then answered 503 (`HashingBusy`) instead of piling up threads, memory and requests.
"""

import asyncio
import logging
import os
import secrets
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

from app.config import Settings
from app.cpu_limit import available_cpus
from app.cpu_slots import CpuSlots, Slot, default_directory
from app.exceptions import HashingBusy

T = TypeVar("T")
logger = logging.getLogger(__name__)


@lru_cache
def argon2id(*, memory_kib: int, time_cost: int, parallelism: int) -> PasswordHash:
    """The hash scheme for these argon2id parameters (one instance per set of parameters)."""
    return PasswordHash(
        (Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism),)
    )


def password_hash_from(settings: Settings) -> PasswordHash:
    """The service's hash scheme as configured (by default OWASP's m=19 MiB, t=2, p=1)."""
    return argon2id(
        memory_kib=settings.hash_memory_kib,
        time_cost=settings.hash_time_cost,
        parallelism=settings.hash_parallelism,
    )


def shared_cpu_slots(settings: Settings, cpus: int) -> CpuSlots | None:
    """The host's one-hash-per-CPU slots (app/cpu_slots.py), or None where they cannot be kept:
    each worker then runs up to `cpus` hashes by itself, as many at once as its clients ask."""
    directory = settings.hash_cpu_slots_dir or default_directory()
    try:
        return CpuSlots(directory, cpus)
    except OSError as exc:
        logger.warning(
            "hashing CPU slots unavailable in %s (%s): each worker hashes on every CPU by itself",
            directory,
            exc,
        )
        return None


def _lower_priority(nice: int) -> None:
    # Per thread on Linux: the event loop keeps its priority, hashing takes what it leaves.
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class HashingPool:
    """At most `threads` hashes run at once; at most `queue_max` callers wait, each `wait_s`.

    `nice` > 0 runs the hashing threads at that lower scheduling priority. With `cpu_slots`,
    each hash first takes one of those host-wide slots, so that all workers together run at
    most one hash per slot, and runs on this pool's thread for that slot: the same thread, and
    so the same warm memory, for every hash this worker makes on that CPU.
    """

    def __init__(
        self,
        *,
        threads: int,
        wait_s: float,
        queue_max: int,
        nice: int = 0,
        password_hash: PasswordHash | None = None,
        cpu_slots: CpuSlots | None = None,
    ) -> None:
        self.threads = threads or available_cpus()
        self.cpu_slots = cpu_slots
        self.wait_s = wait_s
        self.queue_max = queue_max
        self.password_hash = password_hash or password_hash_from(Settings.model_construct())
        lower = partial(_lower_priority, nice) if nice > 0 else None
        self._executor = ThreadPoolExecutor(
            self.threads, thread_name_prefix="argon2", initializer=lower
        )
        # With CPU slots: one thread per slot, which runs every hash this worker makes on it.
        self._slot_threads = [
            ThreadPoolExecutor(1, thread_name_prefix=f"argon2-cpu{i}", initializer=lower)
            for i in range(cpu_slots.count if cpu_slots else 0)
        ]
        # Admission: one semaphore per event loop (an asyncio primitive belongs to the loop it
        # first waits in); the executors bound the threads whatever the number of loops.
        self._admissions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()
        self._waiting = 0
        self._home_jobs = 0  # hashes given to the home slot's thread and not yet done
        # What unknown usernames are verified against, so that they cost what a real
        # verification costs (made on first use, with this pool's parameters).
        self._dummy_hash: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "HashingPool":
        """HASH_THREADS=0: a thread per usable CPU in every worker, and the host's CPU slots
        shared by them all, so that whichever worker holds the clients can use every CPU and
        all of them together never run more hashes than CPUs. HASH_THREADS=n: n threads in
        this worker, whatever the others run."""
        threads = settings.hash_threads or available_cpus()
        return cls(
            threads=threads,
            cpu_slots=None if settings.hash_threads else shared_cpu_slots(settings, threads),
            wait_s=settings.hash_wait_s,
            queue_max=settings.hash_queue_max,
            nice=settings.hash_thread_nice,
            password_hash=password_hash_from(settings),
        )

    async def hash(self, password: str) -> str:
        return await self._run(self.password_hash.hash, password)

    async def verify_and_update(self, password: str, stored_hash: str) -> tuple[bool, str | None]:
        """Does `password` match? And, if it does, its hash with the current parameters when
        `stored_hash` was made with others (pwdlib's verify_and_update), else None."""
        try:
            return await self._run(self.password_hash.verify_and_update, password, stored_hash)
        except UnknownHashError:  # not a hash this service made: nothing can match it
            return False, None

    async def verify_unknown_user(self, password: str) -> None:
        """Spend what verifying `password` against a real hash costs, for a user who does not
        exist, so that a wrong username cannot be told from a wrong password by the time."""
        if self._dummy_hash is None:
            # The first time, making the dummy hash costs the same as a verification would.
            self._dummy_hash = await self.hash(secrets.token_urlsafe(32))
            return
        await self._run(self.password_hash.verify, password, self._dummy_hash)

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        loop = asyncio.get_running_loop()
        admission = self._admissions.get(loop)
        if admission is None:
            admission = self._admissions[loop] = asyncio.Semaphore(self.threads)
        if admission.locked() and self._waiting >= self.queue_max:
            raise HashingBusy()
        self._waiting += 1
        try:
            async with asyncio.timeout(self.wait_s):
                await admission.acquire()
        except TimeoutError:
            raise HashingBusy() from None
        finally:
            self._waiting -= 1
        try:
            if self.cpu_slots is None:
                return await loop.run_in_executor(self._executor, work, *args)
            return await self._on_a_cpu(self.cpu_slots, work, *args)
        finally:
            admission.release()

    async def _on_a_cpu(self, cpu_slots: CpuSlots, work: Callable[..., T], *args: str) -> T:
        """On this worker's home CPU slot, on its thread; or, while that thread is busy, on an
        idle slot borrowed from another worker. The home thread takes the home slot itself
        (waiting for it if another worker borrowed it), so a hash queued there never waits for
        a slot held by a hash queued behind it."""
        borrowed = cpu_slots.try_borrow() if self._home_jobs else None
        if borrowed is None:
            self._home_jobs += 1
            try:
                home = self._slot_threads[cpu_slots.home]
                return await asyncio.wrap_future(home.submit(_at_home, cpu_slots, work, *args))
            finally:
                self._home_jobs -= 1
        job = self._slot_threads[borrowed.index].submit(_holding, borrowed, work, *args)
        # A job cancelled before it ran (its request gave up) never releases its slot itself.
        job.add_done_callback(lambda done: borrowed.release() if done.cancelled() else None)
        return await asyncio.wrap_future(job)

    @property
    def waiting(self) -> int:
        """Callers waiting for a free hasher (a metric)."""
        return self._waiting

    def close(self) -> None:
        for executor in (self._executor, *self._slot_threads):
            executor.shutdown(wait=False, cancel_futures=True)
        if self.cpu_slots is not None:
            self.cpu_slots.close()


def _holding(slot: Slot, work: Callable[..., T], *args: str) -> T:
    try:
        return work(*args)
    finally:
        slot.release()


def _at_home(cpu_slots: CpuSlots, work: Callable[..., T], *args: str) -> T:
    return _holding(cpu_slots.wait_home(), work, *args)
