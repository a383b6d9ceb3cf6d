"""Password hashing with argon2id in a bounded thread pool that the lifespan owns.

Each argon2id hash costs a sizeable slice of a core and its memory cost in RAM, so hashes run on
at most `threads` threads; a burst of registrations waits briefly for a hasher and is then
answered 503 (`HashingBusy`) instead of piling up threads, memory and waiting requests.
"""

import asyncio
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.config import Settings
from app.exceptions import HashingBusy


@lru_cache
def default_password_hash() -> PasswordHash:
    """The service's hash scheme (argon2-cffi's defaults: RFC 9106's second recommendation)."""
    return PasswordHash((Argon2Hasher(),))


def _lower_priority(nice: int) -> None:
    # Per thread on Linux: the event loop keeps its priority, hashing takes what it leaves.
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class HashingPool:
    """At most `threads` hashes run at once; at most `queue_max` callers wait, each `wait_s`.

    `nice` > 0 runs the hashing threads at that lower scheduling priority.
    """

    def __init__(
        self,
        *,
        threads: int,
        wait_s: float,
        queue_max: int,
        nice: int = 0,
        password_hash: PasswordHash | None = None,
    ) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.wait_s = wait_s
        self.queue_max = queue_max
        self.password_hash = password_hash or default_password_hash()
        self._executor = ThreadPoolExecutor(
            self.threads,
            thread_name_prefix="argon2",
            initializer=partial(_lower_priority, nice) if nice > 0 else None,
        )
        # One semaphore per event loop (an asyncio primitive belongs to the loop it first
        # waits in); the executor bounds the threads whatever the number of loops.
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._waiting = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, password_hash: PasswordHash | None = None
    ) -> "HashingPool":
        return cls(
            threads=settings.hash_threads,
            wait_s=settings.hash_wait_s,
            queue_max=settings.hash_queue_max,
            nice=settings.hash_thread_nice,
            password_hash=password_hash,
        )

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.threads)
        if slots.locked() and self._waiting >= self.queue_max:
            raise HashingBusy()
        self._waiting += 1
        try:
            async with asyncio.timeout(self.wait_s):
                await slots.acquire()
        except TimeoutError:
            raise HashingBusy() from None
        finally:
            self._waiting -= 1
        try:
            return await loop.run_in_executor(self._executor, self.password_hash.hash, password)
        finally:
            slots.release()

    @property
    def waiting(self) -> int:
        """Callers waiting for a free hasher (a metric)."""
        return self._waiting

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
