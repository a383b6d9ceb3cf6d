"""Password hashing with argon2id in a bounded thread pool, and the common-password check.

Each argon2id hash costs 0.1-0.25 s of CPU and 64 MiB of memory, so hashes run on at most one
thread per CPU; a burst of registrations waits briefly for a hasher and is then answered 503
(`HashingBusy`) instead of piling up threads, memory and waiting requests.
"""

import asyncio
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from app.config import Settings, get_settings
from app.errors import HashingBusy


@lru_cache
def _password_hash() -> PasswordHash:
    # argon2-cffi's defaults are the RFC 9106 "second recommended" argon2id parameters.
    return PasswordHash((Argon2Hasher(),))


@lru_cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30,000 most common passwords of leaked password dumps, lower-cased.
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    """True for a password found in the common-password list, ignoring case."""
    return password.lower() in _common_passwords()


class HashingPool:
    """At most `threads` hashes run at once; at most `queue_max` callers wait, each `wait_s`."""

    def __init__(self, *, threads: int, wait_s: float, queue_max: int) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.wait_s = wait_s
        self.queue_max = queue_max
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="argon2")
        # One semaphore per event loop (an asyncio primitive belongs to the loop it first
        # waits in); the executor bounds the threads whatever the number of loops.
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._waiting = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> "HashingPool":
        return cls(
            threads=settings.hash_threads,
            wait_s=settings.hash_wait_s,
            queue_max=settings.hash_queue_max,
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
            return await loop.run_in_executor(self._executor, _password_hash().hash, password)
        finally:
            slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# The pool of the running app, installed by its lifespan; a process without one (a script)
# gets a default pool sized from the settings on first use.
_active: HashingPool | None = None


def install_pool(pool: HashingPool | None) -> HashingPool | None:
    """Make `pool` the one `hash_password` uses; returns the previous one, to restore later."""
    global _active
    previous, _active = _active, pool
    return previous


async def hash_password(password: str) -> str:
    global _active
    if _active is None:
        _active = HashingPool.from_settings(get_settings())
    return await _active.hash(password)


async def verify_password(password: str, password_hash: str) -> bool:
    return await asyncio.to_thread(_password_hash().verify, password, password_hash)
