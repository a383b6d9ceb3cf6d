"""A TCP proxy that adds a fixed delay each way, to put a network between the app and MariaDB.

`python -m bench.delay_proxy --listen 3307 --upstream 3306 --rtt-ms 5` adds 2.5 ms per direction
(5 ms per round trip) without serialising packets: every chunk is forwarded `rtt/2` after it
arrived, so many queries can be in flight at once, as on a real network. Each client-to-server
chunk is counted (about one per statement), and SIGUSR1 writes the counters to `--stats`, which
tells the number of database round trips a request costs.
"""

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import cast

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
    uvloop = None  # type: ignore[assignment]

STATS = {"connections": 0, "client_chunks": 0, "server_chunks": 0}


class _Forward(asyncio.Protocol):
    """One direction's receiving end: every chunk is written to `peer` after `delay` seconds."""

    def __init__(self, delay: float, counter: str) -> None:
        self.delay = delay
        self.counter = counter
        self.peer: asyncio.Transport | None = None
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        STATS[self.counter] += 1
        self.loop.call_later(self.delay, self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        if self.peer is None:
            self.pending.append(data)
        elif not self.peer.is_closing():
            self.peer.write(data)

    def set_peer(self, peer: asyncio.Transport) -> None:
        self.peer = peer
        for data in self.pending:
            peer.write(data)
        self.pending.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.loop.call_later(self.delay, self.peer.close)


async def _serve(listen: int, upstream_host: str, upstream: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def on_client(client: _Forward) -> None:
        try:
            transport, server = await loop.create_connection(
                lambda: _Forward(delay, "server_chunks"), upstream_host, upstream
            )
        except OSError:
            if client.transport is not None:
                client.transport.close()
            return
        server.set_peer(client.transport)  # type: ignore[arg-type]
        client.set_peer(transport)

    def factory() -> _Forward:
        client = _Forward(delay, "client_chunks")
        STATS["connections"] += 1
        task = loop.create_task(on_client(client))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return client

    server = await loop.create_server(factory, "127.0.0.1", listen, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", type=int, default=3307)
    parser.add_argument("--upstream-host", default="127.0.0.1")
    parser.add_argument("--upstream", type=int, default=3306)
    parser.add_argument("--rtt-ms", type=float, default=5.0)
    parser.add_argument("--stats", type=Path, default=None)
    args = parser.parse_args()

    def dump(*_: object) -> None:
        if args.stats is not None:
            args.stats.write_text(json.dumps(STATS))

    signal.signal(signal.SIGUSR1, dump)
    serve = _serve(args.listen, args.upstream_host, args.upstream, args.rtt_ms / 2000)
    if uvloop is not None:
        uvloop.run(serve)
    else:
        asyncio.run(serve)


if __name__ == "__main__":
    main()
