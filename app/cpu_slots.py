"""One argon2id hash per usable CPU across every worker process of a host: a lock file per CPU.

uvicorn's workers share one listening socket, and a kept-alive connection stays with the worker
that accepted it, so one worker may hold all of the clients' connections while another holds
none (8 of 8 was seen in the create runs). Hashing threads split per worker (CPUs / workers
each) then leave a CPU idle beside a worker with a queue: half the creates in that round. As many
threads as CPUs in every worker instead runs more hashes than CPUs, and each hash walks 19 MiB:
4 at once on 2 cores took 20% more CPU per hash than 2 (bench/, the create runs). So every worker
may use every CPU, and a lock per CPU, shared through files, keeps the total to one hash per CPU.

Written here rather than taken from a library: what is needed is a counting semaphore shared by
processes that do not share a parent we control (uvicorn starts the workers), released by the
kernel when its holder dies. flock(2) gives exactly that; POSIX and System V semaphores stay
taken after a SIGKILL, and filelock would add polling on top of the same flock calls.
"""

import fcntl
import os
import tempfile
from pathlib import Path

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC


def default_directory() -> Path:
    """Per user, per host (or container): the CPUs are theirs, whatever the service instance."""
    return Path(tempfile.gettempdir()) / f"user-service-cpu-slots-{os.getuid()}"


class Slot:
    """One CPU slot held through its own open lock file; `release` gives it back (once)."""

    def __init__(self, index: int, descriptor: int) -> None:
        self.index = index
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)  # closing the last descriptor of the open file drops its lock


class CpuSlots:
    """`count` slots, each a lock file in `directory`, each held by one running hash.

    Each process (uvicorn worker) claims a home slot of its own when it starts, while there are
    slots left to claim. Its hashes run on its home slot (`wait_home`), and while that one is
    busy on an idle slot no one waits for (`try_borrow`): so each worker keeps hashing on its
    own CPU and borrows another only while that one is idle. Slots passed back and
    forth between workers' threads cost 10% more CPU per hash than each worker keeping its own,
    on the same thread (its argon2 memory stays warm in its malloc arena and in the caches).
    Each slot held is its own open file (flock locks belong to an open file, so two threads of
    one process exclude each other as two processes do).
    """

    def __init__(self, directory: Path, count: int) -> None:
        self.count = count
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        owner = directory.stat().st_uid
        if owner != os.getuid():  # another user's directory could hold every slot forever
            raise PermissionError(f"{directory} belongs to uid {owner}, not to this user")
        self.home, self._claim = self._claim_home()

    def _claim_home(self) -> tuple[int, int | None]:
        """The first home no live process holds (its claim lasts as long as this object or
        this process); with more processes than slots, one chosen by process id."""
        for index in range(self.count):
            claim = self._lock(f"home-{index}.lock", wait=False)
            if claim is not None:
                return index, claim
        return os.getpid() % self.count, None

    def try_borrow(self) -> Slot | None:
        """A free slot other than home that no one is waiting for, or None; never waits.
        Borrowing a slot its own worker waits for would make that worker wait a whole hash
        on another's, and pass the slot back and forth."""
        for offset in range(1, self.count):
            index = (self.home + offset) % self.count
            if self._awaited(index):
                continue
            descriptor = self._lock(f"cpu-{index}.lock", wait=False)
            if descriptor is not None:
                return Slot(index, descriptor)
        return None

    def wait_home(self) -> Slot:
        """The home slot, once its holder lets go (blocks: call it from a thread). Meanwhile
        a shared lock on want-<home> tells the other workers not to borrow it."""
        wanting = self._lock(f"want-{self.home}.lock", wait=True, mode=fcntl.LOCK_SH)
        try:
            descriptor = self._lock(f"cpu-{self.home}.lock", wait=True)
        finally:
            if wanting is not None:
                os.close(wanting)
        assert descriptor is not None, "a blocking flock returns holding the lock"
        return Slot(self.home, descriptor)

    def _awaited(self, index: int) -> bool:
        probe = self._lock(f"want-{index}.lock", wait=False)
        if probe is None:
            return True
        os.close(probe)
        return False

    def close(self) -> None:
        """Give the home slot back for another process to claim."""
        if self._claim is not None:
            os.close(self._claim)
            self._claim = None

    def _lock(self, name: str, *, wait: bool, mode: int = fcntl.LOCK_EX) -> int | None:
        descriptor = os.open(self.directory / name, _OPEN_FLAGS, 0o600)
        try:
            fcntl.flock(descriptor, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor
