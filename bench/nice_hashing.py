"""The service with its argon2 threads at a lower CPU priority: a proposal, measured by the bench.

Not part of the service. `uvicorn bench.nice_hashing:app` serves `app.main:app` unchanged
except that the hashing pool's threads run at nice 10, so the event loop (nice 0) gets the
CPU first and hashing takes what is left. If this wins, the change belongs in
`app/security.py` (one `initializer=` on its ThreadPoolExecutor).
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app import security

NICE = 10


def _lower_priority() -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


_original_init = security.HashingPool.__init__


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self._executor.shutdown(wait=False)
    self._executor = ThreadPoolExecutor(
        self.threads, thread_name_prefix="argon2", initializer=_lower_priority
    )


security.HashingPool.__init__ = _init  # type: ignore[method-assign]

from app.main import app  # noqa: E402  (after the patch: the lifespan builds the pool)

__all__ = ["app"]
