"""uvicorn's httptools protocol with two bounds it lacks: header size and header time.

Measured on uvicorn 0.54 (README, "Running it in production"): with httptools a 32 MiB header
block is answered 200 and grows the worker by 32 MiB, and a client that sends one header line
every 2 s, or nothing at all, keeps its connection open indefinitely (`--timeout-keep-alive`
only covers the idle time *between* requests). h11 bounds only the bytes it buffers without a
complete event (`--h11-max-incomplete-event-size`): a 64 KiB header block that arrives in one
read passes, a larger one gets a plain-text 400, and it has no header timeout either. Here:

- a request line and header block above `MAX_HEADER_BYTES` gets a JSON 431 and the connection
  is closed, after buffering at most that much plus one socket read (256 KiB);
- a client that has not sent its whole header block `HEADER_TIMEOUT_S` after connecting (or
  after the first byte of its next request) gets a 408 and is disconnected; a connection that
  sent nothing is closed silently.

`python -m app.serve` selects it; by hand, `uvicorn --http app.http_protocol:HttpToolsProtocol`.
It overrides uvicorn's parser callbacks and `send_400_response`: the lockfile pins uvicorn, and
tests/api/test_edge_server.py checks both bounds against a real server.
"""

import asyncio
import json
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http import httptools_impl
from uvicorn.server import ServerState

from app.config import get_settings
from app.metrics import count_refusal

logger = logging.getLogger("app.edge")

_PARSED_EXTRA = 4  # ": " and CRLF around each header as it came over the wire


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing; answered in `send_400_response`."""


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout_s = settings.header_timeout_s
        self._awaiting_head = True
        self._head_bytes = 0  # bytes read since this request began, while its head is incomplete
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_too_large = False
        self._refused = False  # answered 408/431: the connection is closing

    # The connection's life: the header clock starts when it opens.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._awaiting_head and not self._refused and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(431)

    # Parser callbacks.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = True
        self._head_bytes = 0
        if self._head_timer is None:  # not re-armed if the connection's first clock still runs
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        self._awaiting_head = False
        size = len(self.url) + sum(len(n) + len(v) + _PARSED_EXTRA for n, v in self.headers)
        if size > self.max_header_bytes:
            self._head_too_large = True
            raise _HeadTooLarge()  # httptools stops and raises; uvicorn calls send_400_response
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._refuse(431)
        else:
            super().send_400_response(msg)

    # The bounds.
    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._awaiting_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined request is still being answered
            return
        if self._head_bytes == 0 and self.scope is None:
            self.transport.close()  # connected and said nothing: nothing to answer
            return
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        if self._refused:
            return
        self._refused = True
        self._disarm_head_timer()
        if status == 431:
            reason = "headers_too_large"
            detail = f"request headers over {self.max_header_bytes} bytes"
        else:
            reason = "header_timeout"
            detail = f"request headers not complete within {self.header_timeout_s:g} s"
        count_refusal(status, reason)
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        logger.warning("refused %s: %d, %s", client, status, detail)
        body = json.dumps({"detail": detail}).encode()
        head = [httptools_impl.STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-content-type-options: nosniff\r\n",
            b"cache-control: no-store\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
