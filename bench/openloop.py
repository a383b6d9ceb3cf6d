"""Open-loop load: GET /show/{id} at a fixed rate, each latency counted from when it was due.

wrk is closed-loop: a connection sends its next request only once the last one answered, so a
server that stalls for 100 ms is sent nothing meanwhile and its stall shows as one slow request
(coordinated omission). Here request i is due at start + i / rate whatever happens; one still
waiting for a free connection, or sent late, counts that wait too. A request unanswered
`timeout` seconds after it was due is abandoned, counted as failed and recorded at its age then
(so percentiles past the share of failures are lower bounds). Connections open on demand (a
gunicorn sync worker would block on an idle one we opened early), up to `--connections`,
kept alive while the server allows and then used in turn.

`python -m bench.openloop URL --rate R --seconds S` prints one JSON object: the latencies (us),
failures, the scheduler's own lateness per request and this process's own CPU seconds.
bench/harness.py openloop() runs it and sums up.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlsplit


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection carrying one request at a time."""

    def __init__(self, gen: "Generator") -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.due = 0.0  # when the request in flight was due; 0: none in flight
        self.buf = b""
        self.body_at = -1  # offset of the body once the head is parsed
        self.length = -1  # content-length; -1: until close
        self.status = 0
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.gen.connected(self)

    def send(self, due: float) -> None:
        assert self.transport is not None
        if self.transport.is_closing():  # the server closed it while idle: another one
            self.gen.waiting.appendleft(due)
            return
        self.due, self.buf, self.body_at, self.length = due, b"", -1, -1
        self.transport.write(self.gen.request())

    def data_received(self, data: bytes) -> None:
        if not self.due:  # nothing asked: not an answer to count
            return
        self.buf += data
        if self.body_at < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            self.status = int(head[9:12])
            self.body_at = end + 4
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                self.length = int(head[at + 17 : line_end if line_end >= 0 else None])
            self.close_after = b"\r\nconnection: close" in head or head.startswith(b"http/1.0")
        if self.length >= 0 and len(self.buf) - self.body_at >= self.length:
            self._answered()

    def _answered(self) -> None:
        due, self.due = self.due, 0.0
        self.gen.answered(due, self.status)
        if self.close_after or self.length < 0:
            if self.transport is not None:
                self.transport.close()
        else:
            self.gen.idle(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.due and self.body_at >= 0 and self.length < 0:  # body delimited by the close
            self._answered()
        elif self.due:  # closed under a request: a read error
            due, self.due = self.due, 0.0
            self.gen.failed(due, "read")
        self.gen.lost(self)

    def abandon(self) -> None:
        due, self.due = self.due, 0.0
        self.gen.failed(due, "timeout")
        self._drop()

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Generator:
    """The schedule, the connections and the tallies of one process's share of the load."""

    def __init__(
        self, url: str, rate: float, seconds: float, connections: int, rows: int, timeout: float
    ) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = f"HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        self.rate, self.seconds, self.rows, self.timeout = rate, seconds, rows, timeout
        self.limit = connections
        self.open: set[_Connection] = set()  # connecting or connected
        self.ready: deque[_Connection] = deque()  # connected, nothing in flight: used in turn
        self.waiting: deque[float] = deque()  # due times of requests with no connection yet
        self.connecting = 0
        self.latencies: list[int] = []
        self.lags: list[int] = []
        self.errors = {"connect": 0, "read": 0, "status": 0, "timeout": 0}
        self.outstanding = 0
        self.tasks: set[asyncio.Task[None]] = set()  # connects under way, kept from the GC

    def request(self) -> bytes:
        return b"GET /show/%d " % random.randint(1, self.rows) + self.head

    # -- the connections' callbacks --------------------------------------------------------
    def connected(self, conn: _Connection) -> None:
        self.connecting -= 1
        self.idle(conn)

    def idle(self, conn: _Connection) -> None:
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.ready.append(conn)

    def answered(self, due: float, status: int) -> None:
        self.outstanding -= 1
        self.latencies.append(int((time.perf_counter() - due) * 1e6))
        if not 200 <= status < 400:
            self.errors["status"] += 1

    def failed(self, due: float, kind: str) -> None:
        self.outstanding -= 1
        self.latencies.append(int((time.perf_counter() - due) * 1e6))
        self.errors[kind] += 1

    def lost(self, conn: _Connection) -> None:
        self.open.discard(conn)
        with contextlib.suppress(ValueError):
            self.ready.remove(conn)
        self._grow()

    # -- the schedule ----------------------------------------------------------------------
    def _dispatch(self, due: float) -> None:
        # The scheduler's own lateness: large values mean this process, not the server, lags.
        self.lags.append(int((time.perf_counter() - due) * 1e6))
        self.outstanding += 1
        # Up to the limit a request gets a new connection even when one is free: a keep-alive
        # server then holds `limit` connections used in turn, spread over its workers as wrk's
        # are, not the two or three a low rate would need, which may all sit on one worker.
        if self.ready and len(self.open) >= self.limit:
            self.ready.popleft().send(due)
        else:
            self.waiting.append(due)
            self._grow()

    def _grow(self) -> None:
        """Open connections for the requests waiting, up to the limit."""
        while self.waiting and self.connecting < len(self.waiting) and len(self.open) < self.limit:
            self.connecting += 1
            conn = _Connection(self)
            self.open.add(conn)
            task = asyncio.get_running_loop().create_task(self._connect(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _connect(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: conn, self.host, self.port)
        except OSError:
            self.connecting -= 1
            self.open.discard(conn)
            if self.waiting:
                self.failed(self.waiting.popleft(), "connect")
            await asyncio.sleep(0.01)
            self._grow()

    def _expire(self, now: float) -> None:
        oldest = now - self.timeout
        while self.waiting and self.waiting[0] < oldest:
            self.failed(self.waiting.popleft(), "timeout")
        for conn in list(self.open):
            if conn.due and conn.due < oldest:
                conn.abandon()

    async def run(self, start: float, offset: float) -> dict[str, Any]:
        """Send the requests due at start + (offset + i) / rate, for `seconds`; wait for the
        last answers (at most `timeout`)."""
        total = int(self.rate * self.seconds)
        step = 1 / self.rate
        await asyncio.sleep(max(0.0, start - time.time()))
        cpu0, t0 = _cpu_s(), time.perf_counter()
        sent, next_check = 0, t0
        while sent < total:
            now = time.perf_counter()
            while sent < total and t0 + (offset + sent) * step <= now:
                self._dispatch(t0 + (offset + sent) * step)
                sent += 1
            if now >= next_check:
                self._expire(now)
                next_check = now + 0.05
            if sent < total:
                # At least a millisecond, the loop's timer resolution: a shorter sleep returns at
                # once and the loop spins, taking CPU from the servers on the same cores. So a
                # request may go out up to ~1 ms late; its latency still counts from when it was
                # due (the `lags` say how late).
                wait = t0 + (offset + sent) * step - time.perf_counter()
                await asyncio.sleep(max(0.001, wait))
        while self.outstanding > 0:
            self._expire(time.perf_counter())
            await asyncio.sleep(0.01)
        wall = time.perf_counter() - t0
        cpu = _cpu_s() - cpu0
        for conn in list(self.open):
            conn._drop()
        return {
            "offered_rate": self.rate,
            "scheduled": total,
            "wall_s": wall,
            "cpu_s": cpu,
            "latencies_us": self.latencies,
            "lags_us": self.lags,
            "errors": self.errors,
        }


def percentile(sorted_values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(rank) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests/s of this process")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--start", type=float, default=0.0, help="time.time() to start at")
    parser.add_argument("--offset", type=float, default=0.0, help="phase, in request intervals")
    args = parser.parse_args()
    # The clock must not wait behind the servers it measures: on two busy cores a process at
    # the servers' priority was measured sending requests up to 120 ms late. Its CPU is small
    # and reported; without the right to raise its priority it runs as it is.
    with contextlib.suppress(PermissionError):
        os.nice(-5)
    try:
        import uvloop  # the same loop as the service: less CPU per request than asyncio's

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    gen = Generator(args.url, args.rate, args.seconds, args.connections, args.rows, args.timeout)
    print(json.dumps(runner(gen.run(args.start or time.time(), args.offset))))


if __name__ == "__main__":
    main()
