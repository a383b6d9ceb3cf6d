"""Shared rate limits: the `limits` library's moving window, in memory or in Redis; the client
is the peer unless a configured proxy forwarded it; two workers with Redis share one allowance.

Redis is at REDIS_URL (redis://127.0.0.1:6379/0 on the development and CI machines); each test
writes under a key prefix of its own, so parallel runs never share an allowance.
"""

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from app.config import Settings
from app.limits import RateLimiter, write_limit
from tests.support.net import free_port
from tests.support.server import Served, serving

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BURST = 5


@pytest.fixture
def key_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def redis_settings(prefix: str, url: str = REDIS_URL) -> Settings:
    return Settings(_env_file=None, redis_url=url, rate_limit_key_prefix=prefix)


async def test_burst_at_once_then_one_more_per_window() -> None:
    limiter = RateLimiter.from_settings(Settings(_env_file=None))
    limit = write_limit(per_minute=120, burst=2)  # 2 in any 1 s
    assert await limiter.wait_for(limit, "writes", "a") == 0
    assert await limiter.wait_for(limit, "writes", "a") == 0
    wait = await limiter.wait_for(limit, "writes", "a")
    assert 0 < wait <= 1
    assert await limiter.wait_for(limit, "writes", "b") == 0  # another client, its own allowance
    await asyncio.sleep(wait + 0.05)
    assert await limiter.wait_for(limit, "writes", "a") == 0


async def test_limiters_in_two_processes_count_apart_in_memory() -> None:
    # The default: each worker process holds its own counts (README says so).
    first, second = (RateLimiter.from_settings(Settings(_env_file=None)) for _ in range(2))
    limit = write_limit(per_minute=60, burst=BURST)
    granted = [await lim.wait_for(limit, "writes", "c") == 0 for lim in (first, second) * BURST]
    assert sum(granted) == 2 * BURST


async def test_limiters_on_one_redis_share_one_allowance(key_prefix: str) -> None:
    first, second = (RateLimiter.from_settings(redis_settings(key_prefix)) for _ in range(2))
    limit = write_limit(per_minute=60, burst=BURST)
    granted = [await lim.wait_for(limit, "writes", "c") == 0 for lim in (first, second) * BURST]
    assert sum(granted) == BURST


async def test_a_redis_outage_lets_writes_through_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RateLimiter.from_settings(redis_settings("x", f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    assert await limiter.wait_for(write_limit(60, 1), "writes", "d") == 0
    assert time.monotonic() - started < 2
    assert "rate limit storage failed, not limiting: ConnectionError" in caplog.text


# Against `python -m app.serve`: what uvicorn does with X-Forwarded-For, and real workers.


def post_writes(
    served: Served, count: int, headers: list[dict[str, str]] | None = None
) -> list[int]:
    """`count` invalid creates (422 when let through: no hashing), each on a new connection."""
    statuses = []
    for i in range(count):
        extra = headers[i] if headers else {}
        response = httpx.post(f"{served.url}/users", json={}, headers=extra)
        statuses.append(response.status_code)
    return statuses


def limited_env(**more: str) -> dict[str, str]:
    return {"RATE_LIMIT_WRITES_PER_MINUTE": str(BURST), "RATE_LIMIT_BURST": str(BURST), **more}


def test_a_spoofed_forwarded_for_from_an_untrusted_client_keeps_its_bucket(
    database_url_at_head: str,
) -> None:
    with serving(database_url_at_head, env=limited_env()) as served:
        spoofed = [{"X-Forwarded-For": f"198.51.100.{i}"} for i in range(2 * BURST)]
        statuses = post_writes(served, 2 * BURST, spoofed)
        clients = {line["client"] for line in served.access_lines()} - {None}
    assert statuses == [422] * BURST + [429] * BURST
    assert clients == {"127.0.0.1"}


def test_forwarded_for_from_a_configured_proxy_names_the_client(database_url_at_head: str) -> None:
    env = limited_env(FORWARDED_ALLOW_IPS="127.0.0.1")
    with serving(database_url_at_head, env=env) as served:
        forwarded = [{"X-Forwarded-For": f"198.51.100.{i}"} for i in range(2 * BURST)]
        distinct = post_writes(served, 2 * BURST, forwarded)
        same = post_writes(served, BURST + 1, [{"X-Forwarded-For": "203.0.113.7"}] * (BURST + 1))
        clients = {line["client"] for line in served.access_lines()}
    assert distinct == [422] * (2 * BURST)  # each forwarded client has its own allowance
    assert same == [422] * BURST + [429]
    assert {"198.51.100.0", "203.0.113.7"} <= clients


def concurrent_writes(served: Served, count: int) -> list[int]:
    """`count` writes at once on separate connections, so both workers' accept loops get some."""
    statuses: list[int] = []
    barrier = threading.Barrier(count)

    def one() -> None:
        with httpx.Client(headers={"Connection": "close"}) as client:
            barrier.wait()
            statuses.append(client.post(f"{served.url}/users", json={}).status_code)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def writes_across_both_workers(served: Served, rounds: int = 6) -> Iterator[list[int]]:
    """Rounds of concurrent writes until access lines show both workers served some."""
    for _ in range(rounds):
        yield concurrent_writes(served, 16)
        time.sleep(0.3)  # the access lines are written as the answers go out
        if len({line["pid"] for line in served.access_lines() if line["method"] == "POST"}) >= 2:
            return
    pytest.fail("the kernel gave every connection to one worker; rerun")


def test_two_workers_with_redis_share_one_allowance(
    database_url_at_head: str, key_prefix: str
) -> None:
    env = limited_env(REDIS_URL=REDIS_URL, RATE_LIMIT_KEY_PREFIX=key_prefix)
    with serving(database_url_at_head, workers=2, env=env) as served:
        statuses = [s for batch in writes_across_both_workers(served) for s in batch]
    assert set(statuses) == {422, 429}
    assert statuses.count(422) == BURST


def test_two_workers_in_memory_each_count_their_own(database_url_at_head: str) -> None:
    # The control for the test above: without Redis the two workers' allowances add up.
    with serving(database_url_at_head, workers=2, env=limited_env()) as served:
        statuses = [s for batch in writes_across_both_workers(served) for s in batch]
    assert statuses.count(422) > BURST
