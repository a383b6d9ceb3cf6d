"""A real `python -m app.serve` on a free loopback port, for what only a running server shows:
header bounds, worker processes, the metrics they share, proxy headers, the log lines."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.migrate.config import PROJECT_ROOT
from tests.support.net import free_port


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)  # stderr, one log line each

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def records(self) -> list[dict[str, Any]]:
        """Every stderr line parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in list(self.lines) if line.strip()]

    def access_lines(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("logger") == "app.access"]


def _collect(stream: Any, into: list[str]) -> None:
    for raw in iter(stream.readline, b""):
        into.append(raw.decode("utf-8", "replace"))


@contextmanager
def serving(
    database_url: str,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60,
) -> Iterator[Served]:
    """The service on its own, started as production starts it; stopped at the end."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.serve", "--port", str(port), "--workers", str(workers)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so the whole group (launcher and workers) can be stopped
    )
    served = Served(port, process)
    reader = threading.Thread(target=_collect, args=(process.stderr, served.lines), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"app.serve exited {process.returncode}:\n{''.join(served.lines)}"
                )
            try:
                if httpx.get(f"{served.url}/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"app.serve not up in {timeout_s:.0f} s:\n{''.join(served.lines)}"
                )
            time.sleep(0.1)
        if workers > 1:
            _wait_for_workers(served, workers, deadline)
        yield served
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(5)


def _wait_for_workers(served: Served, workers: int, deadline: float) -> None:
    """Until every worker has said its application started (one answering is not all)."""
    while time.monotonic() < deadline:
        started = [line for line in list(served.lines) if "Application startup complete" in line]
        if len(started) >= workers:
            return
        time.sleep(0.1)
    raise RuntimeError(f"not all {workers} workers started:\n{''.join(served.lines)}")
