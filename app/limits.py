"""What one request or one client can cost: body size, time, and a rate of writes.

Each middleware answers with the service's JSON error shape: 413 for a body over the cap, 503
with `Retry-After` for a request past its deadline, 429 with `Retry-After` for a client over
its write rate. `RateLimiter` holds the allowances, shared between workers through Redis.
"""

import asyncio
import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.asgi import HttpMiddleware, ResponseWatch
from app.config import Settings
from app.error_handlers import error_response
from app.exceptions import RequestTimedOut
from app.metrics import count_refusal

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REDIS_TIMEOUT_S = 0.25


class BodyLimitMiddleware(HttpMiddleware):
    """Reads the request body up front, answering 413 as soon as it passes `max_bytes`.

    Starlette's own limit answers a too-large `Content-Length` in plain text; this one keeps
    the JSON shape, and the buffered body (small by definition) is then replayed to the app.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        count_refusal(413, "body_too_large")
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413
        )
        await response(scope, receive, send)


class DeadlineMiddleware(HttpMiddleware):
    """Answers 503 (with `Retry-After`) for a request still running after `timeout_s`.

    Connect and pool timeouts bound waiting for a *new* connection, but nothing in aiomysql
    bounds a read on an established one: a stalled database would hold the request forever.
    Cancelling it lets SQLAlchemy invalidate the connection it was using.
    """

    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        super().__init__(app)
        self.timeout_s = timeout_s

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = ResponseWatch(send)
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                await self.app(scope, receive, watch.send)
        except TimeoutError:
            if not deadline.expired() or watch.status:
                raise
            logger.warning("request timed out: %s %s", scope["method"], scope["path"])
            count_refusal(503, "request_timeout")
            await error_response(RequestTimedOut())(scope, receive, send)


class RateLimiter:
    """Allowances per key, counted by the `limits` library (a moving window).

    In memory for this process by default; in Redis when `REDIS_URL` is set, so every worker
    and replica draws on one allowance per client. The write limit uses it through
    `RateLimitMiddleware`; any other limit (a login limit per account, say) calls `wait_for`
    with its own `RateLimitItem` and key parts, e.g.
    `await limiter.wait_for(login_limit, "login", username)`.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> "RateLimiter":
        if not settings.redis_url:
            return cls(MemoryStorage())
        # Short socket timeouts: a stalled Redis costs a write a fraction of a second, then
        # the limit is skipped (see wait_for), never the request's whole deadline.
        storage = RedisStorage(
            f"async+{settings.redis_url}",
            implementation="redispy",
            key_prefix=settings.rate_limit_key_prefix,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        return cls(storage)

    async def wait_for(self, item: RateLimitItem, *key: str) -> float:
        """Take one from `key`'s allowance under `item`: 0 if granted, else the seconds until
        one frees up. If the storage fails the request is let through (and logged): a Redis
        outage must not take the writes down with it."""
        try:
            if await self.strategy.hit(item, *key):
                return 0.0
            stats = await self.strategy.get_window_stats(item, *key)
        except Exception as exc:
            logger.warning("rate limit storage failed, not limiting: %s", type(exc).__name__)
            return 0.0
        return max(stats.reset_time - time.time(), 0.001)


def write_limit(per_minute: int, burst: int) -> RateLimitItem:
    """`burst` writes in any window of burst/rate: at most `burst` at once, `per_minute` a
    minute sustained (the token bucket's promise, as a moving window)."""
    window_s = max(1, math.ceil(60 * burst / per_minute))
    return RateLimitItemPerSecond(burst, window_s)


class RateLimitMiddleware(HttpMiddleware):
    """Writes (POST, PUT, PATCH, DELETE) per client address, through the app's `RateLimiter`.

    The address is the peer's, or the one a trusted proxy forwarded: uvicorn rewrites it from
    X-Forwarded-For only for the proxies in `FORWARDED_ALLOW_IPS` (`python -m app.serve` passes
    it on), so a client cannot choose its own bucket by sending that header.
    """

    def __init__(self, app: ASGIApp, *, per_minute: int, burst: int) -> None:
        super().__init__(app)
        self.limit = write_limit(per_minute, burst)

    def applies_to(self, scope: Scope) -> bool:
        return super().applies_to(scope) and scope["method"] in WRITE_METHODS

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        limiter: RateLimiter = scope["app"].state.runtime.limiter
        wait = await limiter.wait_for(self.limit, "writes", client[0] if client else "unknown")
        if wait > 0:
            count_refusal(429, "rate_limited")
            response = JSONResponse(
                {"detail": "too many write requests, slow down"},
                status_code=429,
                headers={"Retry-After": str(math.ceil(wait))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
