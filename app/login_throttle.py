"""Login throttling per account (ASVS 6.3.1), shared by every worker and replica.

Each login attempt for an account is counted *before* its password is checked, atomically, in
a window that starts with the first attempt after a reset: attempt N + 1 within the window is
refused with 429 and its password never checked, so not even a burst of parallel guesses gets
past N verifications. A successful login resets the count. Accounts are keyed by the sha256 of
the username tried, so unknown usernames are throttled alike (a 429 tells nothing about whether
an account exists) and a password typed into the username field is never stored.

Two stores behind one interface: the database (the `login_throttle` table; the default) and
Redis when `REDIS_URL` is set.
"""

import hashlib
import logging
import math
from datetime import datetime, timedelta
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import case, delete, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Insert

from app.backend import is_mysql, is_sqlite
from app.clock import Clock
from app.config import Settings
from app.exceptions import ThrottleUnavailable
from app.models import LoginThrottle

# The database store clears windows that ended at most this often per process.
PURGE_EVERY_S = 60
# How often an attempt that lost a deadlock is run again (MySQL/MariaDB).
DEADLOCK_RETRIES = 3
ER_LOCK_DEADLOCK = 1213

logger = logging.getLogger(__name__)


def _is_deadlock(exc: OperationalError) -> bool:
    args: tuple[object, ...] = getattr(exc.orig, "args", ())
    return len(args) > 0 and args[0] == ER_LOCK_DEADLOCK


def throttle_key(username: str) -> str:
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


class ThrottleStore(Protocol):
    async def attempt(self, key: str) -> int | None:
        """Count an attempt for `key`: None if it may go ahead, else seconds until it may."""
        ...

    async def reset(self, key: str) -> None: ...

    async def close(self) -> None: ...


class DatabaseThrottle:
    """The counts in the `login_throttle` table, one atomic upsert per attempt."""

    def __init__(
        self, engine: AsyncEngine, *, max_failures: int, window_s: int, clock: Clock
    ) -> None:
        dialect = engine.dialect
        if not (is_sqlite(dialect) or is_mysql(dialect)):
            raise RuntimeError(
                f"the database login throttle supports SQLite and MySQL/MariaDB, not "
                f"{dialect.name}: set REDIS_URL"
            )
        self.engine = engine
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_s)
        self.clock = clock
        self._purged_at: datetime | None = None  # never yet: purge at the first attempt

    def _upsert(self, key: str, now: datetime) -> Insert:
        ended = LoginThrottle.window_ends_at <= now
        values = {"key_hash": key, "attempts": 1, "window_ends_at": now + self.window}
        # A window that has ended starts again at 1; otherwise the count goes up by one.
        attempts = case((ended, 1), else_=LoginThrottle.attempts + 1)
        window_ends_at = case((ended, now + self.window), else_=LoginThrottle.window_ends_at)
        if is_sqlite(self.engine.dialect):
            return (
                sqlite.insert(LoginThrottle)
                .values(values)
                .on_conflict_do_update(
                    index_elements=[LoginThrottle.key_hash],
                    set_={"attempts": attempts, "window_ends_at": window_ends_at},
                )
            )
        # MySQL applies the assignments in order, each seeing the ones before: `attempts`
        # first, so both read the old window_ends_at.
        upsert: Insert = (
            mysql.insert(LoginThrottle)
            .values(values)
            .on_duplicate_key_update([("attempts", attempts), ("window_ends_at", window_ends_at)])
        )
        return upsert

    async def attempt(self, key: str) -> int | None:
        now = self.clock()
        for retry in range(DEADLOCK_RETRIES + 1):
            try:
                async with self.engine.begin() as connection:
                    await connection.execute(self._upsert(key, now))
                    # Same transaction: the row is ours until the commit, so this reads our
                    # own count.
                    row = (
                        await connection.execute(
                            select(LoginThrottle.attempts, LoginThrottle.window_ends_at).where(
                                LoginThrottle.key_hash == key
                            )
                        )
                    ).one()
                break
            except OperationalError as exc:
                # InnoDB may pick this short transaction as a deadlock victim (concurrent
                # upserts into neighbouring gaps, a purge): it was rolled back, so run it again.
                if not _is_deadlock(exc) or retry == DEADLOCK_RETRIES:
                    raise
        await self._purge_if_due(now)
        attempts: int = row.attempts
        window_ends_at: datetime = row.window_ends_at
        if attempts <= self.max_failures:
            return None
        return max(1, math.ceil((window_ends_at - now).total_seconds()))

    async def _purge_if_due(self, now: datetime) -> None:
        """Delete the rows whose window has ended, at most every PURGE_EVERY_S per process.

        Its own transaction, after the attempt's commit: its range locks never hold up a
        login. Best effort: if it collides with another process's purge, the next one cleans.
        """
        if self._purged_at is not None and now - self._purged_at < timedelta(seconds=PURGE_EVERY_S):
            return
        self._purged_at = now
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    delete(LoginThrottle).where(LoginThrottle.window_ends_at <= now)
                )
        except OperationalError as exc:
            if not _is_deadlock(exc):
                raise
            logger.info("login throttle purge gave way to a concurrent one; retried later")

    async def reset(self, key: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(LoginThrottle).where(LoginThrottle.key_hash == key))

    async def close(self) -> None:
        return None  # the engine belongs to AppState


class RedisThrottle:
    """The counts in Redis: a counter per account that expires with its window."""

    def __init__(
        self, client: "aioredis.Redis", *, max_failures: int, window_s: int, prefix: str
    ) -> None:
        self.client = client
        self.max_failures = max_failures
        self.window_s = window_s
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> "RedisThrottle":
        # Bounded waits: a dead Redis gives a quick 503, as a dead database does.
        client = aioredis.from_url(
            url,
            socket_connect_timeout=settings.db_connect_timeout_s,
            socket_timeout=settings.db_pool_timeout_s,
        )
        return cls(
            client,
            max_failures=settings.login_max_failures,
            window_s=settings.login_failure_window_s,
            prefix=f"{settings.redis_key_prefix}login-attempts:",
        )

    async def attempt(self, key: str) -> int | None:
        name = self.prefix + key
        try:
            # MULTI/EXEC: the window starts with the first attempt (SET ... NX EX), INCR keeps
            # its expiry, and no other client's command runs in between.
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(name, 0, ex=self.window_s, nx=True)
                pipe.incr(name)
                pipe.ttl(name)
                _created, count, ttl = await pipe.execute()
        except RedisError as exc:
            raise ThrottleUnavailable() from exc
        if int(count) <= self.max_failures:
            return None
        return max(1, int(ttl or 0))

    async def reset(self, key: str) -> None:
        try:
            await self.client.delete(self.prefix + key)
        except RedisError as exc:
            raise ThrottleUnavailable() from exc

    async def close(self) -> None:
        await self.client.aclose()


def throttle_store(settings: Settings, engine: AsyncEngine, clock: Clock) -> ThrottleStore:
    """Redis if `REDIS_URL` is set, else the database."""
    if settings.redis_url:
        return RedisThrottle.from_url(settings.redis_url, settings)
    return DatabaseThrottle(
        engine,
        max_failures=settings.login_max_failures,
        window_s=settings.login_failure_window_s,
        clock=clock,
    )
