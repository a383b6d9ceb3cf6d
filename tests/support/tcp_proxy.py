"""A TCP proxy between the app and MariaDB that a test can cut, stall and restore.

`cut()` closes every open connection and refuses new ones at once, as when the database
restarts or the network drops; `stall()` keeps connections open but forwards nothing, as
when the database hangs; `restore()` forwards again. Only the proxy's connections are
touched: the shared MariaDB server never notices more than clients going away.
"""

import asyncio
import contextlib
from typing import Literal

Mode = Literal["open", "cut", "stall"]


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.mode: Mode = "open"
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._not_stalled = asyncio.Event()
        self._not_stalled.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        """Drop every connection now and refuse new ones until `restore()`."""
        self.mode = "cut"
        self._not_stalled.set()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def stall(self) -> None:
        """Forward nothing, either way, until `restore()`; connections stay open."""
        self.mode = "stall"
        self._not_stalled.clear()

    def restore(self) -> None:
        self.mode = "open"
        self._not_stalled.set()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "cut":
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, server_w))
        for reader, writer in ((client_r, server_w), (server_r, client_w)):
            task = asyncio.create_task(self._pipe(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._not_stalled.wait()
                if self.mode == "cut" or writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()
