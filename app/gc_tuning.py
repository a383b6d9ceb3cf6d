"""The garbage collector tuned for a serving process (start-up objects frozen, fewer young
scans), and its pauses measured."""

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def tune_garbage_collector(*, freeze: bool, gen0_threshold: int) -> None:
    """Run once start-up is done (the app, its pools and every module are built).

    `freeze`: move every object alive now to the permanent generation, so that no collection
    scans them again; they live as long as the process anyway. `gen0_threshold`: allocations
    between young-generation collections (0 keeps CPython's 700). A request allocates a few
    hundred container objects, so the default collects every few requests, and each collection
    that reaches the older generations walks everything still alive: those pauses, not the
    event loop, made most of the tail latency (docs/benchmarks.md).
    """
    if freeze:
        gc.collect()
        gc.freeze()
    if gen0_threshold:
        _gen0, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)


@contextmanager
def pauses_observed(observe: Callable[[int, float], None]) -> Iterator[None]:
    """While inside, `observe(generation, seconds)` is called after every collection: the
    pauses the collector makes every request in flight on this worker wait out."""
    started: list[float] = []

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            observe(int(info["generation"]), time.perf_counter() - started.pop())

    gc.callbacks.append(on_collection)
    try:
        yield
    finally:
        gc.callbacks.remove(on_collection)
