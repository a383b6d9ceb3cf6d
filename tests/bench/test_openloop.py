"""bench/openloop.py: a fixed rate whatever the server does, latency from when each was due."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from bench.openloop import Generator, percentile

Handler = Callable[[float], float | None]  # seconds since start -> delay before answering


@asynccontextmanager
async def stub_server(delay_at: Handler, *, close: bool = False) -> AsyncIterator[str]:
    """An HTTP/1.1 server answering every request with a small JSON body after
    `delay_at(seconds since start)` seconds (None: never), keep-alive unless `close`."""
    started = time.perf_counter()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                delay = delay_at(time.perf_counter() - started)
                if delay is None:
                    await asyncio.sleep(3600)
                    return
                await asyncio.sleep(delay)
                body = b'{"id":1,"username":"u1"}'
                extra = b"connection: close\r\n" if close else b""
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s"
                             % (len(body), extra, body))  # fmt: skip
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def run(
    url: str, *, rate: float, seconds: float, conns: int, limit_s: float = 2.0
) -> dict[str, Any]:
    gen = Generator(url, rate, seconds, conns, rows=100, timeout=limit_s)
    return await gen.run(time.time(), 0.0)


async def test_a_stall_counts_for_every_request_due_during_it() -> None:
    # 300 ms without answers, from 0.3 s on: at 200 requests/s some 60 requests fall due in it.
    # A closed-loop client with 4 connections would see 4 slow requests; here each of the 60
    # counts its wait from when it was due.
    async with stub_server(lambda t: 0.3 - (t - 0.3) if 0.3 <= t < 0.6 else 0.001) as url:
        out = await run(url, rate=200, seconds=1.0, conns=4)
    latencies = sorted(out["latencies_us"])
    assert out["scheduled"] == len(latencies) == 200
    assert sum(out["errors"].values()) == 0
    slow = [v for v in latencies if v > 100_000]
    assert len(slow) >= 30
    assert percentile(latencies, 50) < 100_000  # the rest were not slowed


async def test_connections_the_server_closes_are_reopened() -> None:
    async with stub_server(lambda t: 0.001, close=True) as url:
        out = await run(url, rate=100, seconds=0.5, conns=8)
    assert len(out["latencies_us"]) == 50
    assert sum(out["errors"].values()) == 0


async def test_unanswered_requests_fail_as_timeouts_recorded_at_their_age() -> None:
    async with stub_server(lambda t: None) as url:
        out = await run(url, rate=40, seconds=0.25, conns=4, limit_s=0.2)
    assert out["errors"]["timeout"] == 10
    assert min(out["latencies_us"]) >= 200_000


def test_nearest_rank_percentiles() -> None:
    values = list(range(1, 1001))
    assert percentile(values, 50) == 500
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert percentile([], 99) == 0
