"""ASGI middleware that bounds what one request or one client can cost: body size, time, writes.

Each answers with the service's JSON error shape: 413 for a body over the cap, 503 with
`Retry-After` for a request past its deadline, 429 with `Retry-After` for a client over its
write rate.
"""

import asyncio
import logging
import math
import time
from collections import OrderedDict

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.error_handlers import error_response
from app.exceptions import RequestTimedOut

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimitMiddleware:
    """Reads the request body up front, answering 413 as soon as it passes `max_bytes`.

    Starlette's own limit answers a too-large `Content-Length` in plain text; this one keeps
    the JSON shape, and the buffered body (small by definition) is then replayed to the app.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413
        )
        await response(scope, receive, send)


class DeadlineMiddleware:
    """Answers 503 (with `Retry-After`) for a request still running after `timeout_s`.

    Connect and pool timeouts bound waiting for a *new* connection, but nothing in aiomysql
    bounds a read on an established one: a stalled database would hold the request forever.
    Cancelling it lets SQLAlchemy invalidate the connection it was using.
    """

    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                await self.app(scope, receive, send_tracked)
        except TimeoutError:
            if not deadline.expired() or started:
                raise
            logger.warning("request timed out: %s %s", scope["method"], scope["path"])
            await error_response(RequestTimedOut())(scope, receive, send)


class RateLimitMiddleware:
    """A token bucket per client address on write routes: `burst` at once, then `per_minute`.

    Keyed on the peer address as the server reports it; behind a reverse proxy, run uvicorn
    with `--proxy-headers` and `--forwarded-allow-ips` so that is the real client.
    """

    def __init__(
        self, app: ASGIApp, *, per_minute: int, burst: int, max_clients: int = 10_000
    ) -> None:
        self.app = app
        self.rate = per_minute / 60
        self.burst = max(burst, 1)
        self.max_clients = max_clients
        # client -> (tokens, when they were counted); least recently seen first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        wait = self._take(key, time.monotonic())
        if wait > 0:
            response = JSONResponse(
                {"detail": "too many write requests, slow down"},
                status_code=429,
                headers={"Retry-After": str(math.ceil(wait))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _take(self, key: str, now: float) -> float:
        """Take a token for `key`; 0 if there was one, else the seconds until there is."""
        tokens, then = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
