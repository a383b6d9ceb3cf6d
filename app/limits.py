"""What one client can cost: a rate of writes, as allowances shared between workers.

`RateLimiter` holds the allowances (in memory, or in Redis); the edge (app/edge.py) answers a
client over its write rate with 429 and `Retry-After`. The body cap is app/request_body.py's,
the deadline the edge's own.
"""

import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from app.config import Settings
from app.metrics import count_refusal

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REDIS_TIMEOUT_S = 0.25


class RateLimiter:
    """Allowances per key, counted by the `limits` library (a moving window).

    In memory for this process by default; in Redis when `REDIS_URL` is set, so every worker
    and replica draws on one allowance per client. The write limit uses it through
    `write_refusal` (from the edge); any other limit (a login limit per account, say) calls
    `wait_for` with its own `RateLimitItem` and key parts, e.g.
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


async def write_refusal(
    limiter: RateLimiter, limit: RateLimitItem, scope: Scope
) -> Response | None:
    """A 429 with `Retry-After` for a client over its write allowance, else None.

    Per client address: the peer's, or the one a trusted proxy forwarded: uvicorn rewrites it
    from X-Forwarded-For only for the proxies in `FORWARDED_ALLOW_IPS` (`python -m app.serve`
    passes it on), so a client cannot choose its own bucket by sending that header.
    """
    client = scope.get("client")
    wait = await limiter.wait_for(limit, "writes", client[0] if client else "unknown")
    if wait <= 0:
        return None
    count_refusal(429, "rate_limited")
    return JSONResponse(
        {"detail": "too many write requests, slow down"},
        status_code=429,
        headers={"Retry-After": str(math.ceil(wait))},
    )
