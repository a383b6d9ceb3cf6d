"""Floods: a registration burst is bounded by the hashing pool, reads still answer during it,
and the per-client write rate limit (off by default) answers 429 (more in test_rate_limits)."""

import asyncio
import os
import threading
import time
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.cpu_limit import available_cpus
from app.hashing import HashingPool
from tests.conftest import OWASP_HASH_COST
from tests.support.serving import serve

PASSWORD = "flood-Passw0rd"


async def usernames(db: AsyncEngine) -> set[str]:
    async with db.connect() as connection:
        return set((await connection.execute(text("SELECT username FROM user_list"))).scalars())


def hashing_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("argon2"))


def test_hashing_pool_is_sized_from_the_cpus_this_process_may_use() -> None:
    pool = HashingPool(threads=0, wait_s=1, queue_max=1)
    try:
        assert pool.threads == available_cpus() == len(os.sched_getaffinity(0))
    finally:
        pool.close()


async def test_registration_burst_beyond_the_pool_gets_503_and_writes_nothing(
    settings: Settings, db: AsyncEngine
) -> None:
    bounds: dict[str, Any] = {"hash_threads": 1, "hash_wait_s": 0.3, "hash_queue_max": 3}
    async with serve(settings, **bounds, **OWASP_HASH_COST) as client:
        most_threads = 0

        async def watch_threads() -> None:
            nonlocal most_threads
            while True:
                most_threads = max(most_threads, hashing_threads())
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch_threads())
        responses = await asyncio.gather(
            *(
                client.post("/users", json={"username": f"b{i}", "password": PASSWORD})
                for i in range(20)
            )
        )
        watcher.cancel()

    statuses = [r.status_code for r in responses]
    assert set(statuses) == {201, 503}, statuses
    for response in responses:
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"
            assert "retry later" in response.json()["detail"]
    assert most_threads == 1
    # Every 201 was stored; no 503 was.
    created = {r.json()["username"] for r in responses if r.status_code == 201}
    assert await usernames(db) == created


BURST = 48


async def test_reads_answer_during_a_registration_burst(
    settings: Settings, db: AsyncEngine
) -> None:
    async with serve(settings, **OWASP_HASH_COST) as client:  # hashes that take their time
        first = await client.post("/users", json={"username": "reader", "password": PASSWORD})
        user_id = first.json()["id"]
        # Long enough to read through: at about 20 ms a hash, 12 hashes on two hashers were
        # over within four reads on a quiet machine.
        burst = asyncio.gather(
            *(
                client.post("/users", json={"username": f"r{i}", "password": PASSWORD})
                for i in range(BURST)
            )
        )
        await asyncio.sleep(0.05)  # let the burst occupy every hasher
        read_times = []
        while not burst.done():
            start = time.monotonic()
            response = await client.get(f"/users/{user_id}")
            read_times.append(time.monotonic() - start)
            assert response.status_code == 200
            await asyncio.sleep(0.02)
        statuses = [r.status_code for r in await burst]
    assert statuses == [201] * BURST
    assert len(read_times) >= 5, "the burst ended before reads were measured"
    assert max(read_times) < 1.0, read_times


async def test_write_rate_limit_is_off_by_default(client: AsyncClient) -> None:
    # Invalid bodies: they still count as writes, and cost no hashing.
    responses = [await client.post("/users", json={}) for _ in range(60)]
    assert {r.status_code for r in responses} == {422}


async def test_write_rate_limit_answers_429_with_retry_after(settings: Settings) -> None:
    limits: dict[str, Any] = {"rate_limit_writes_per_minute": 60, "rate_limit_burst": 3}
    async with serve(settings, **limits) as client:
        first = [await client.post("/users", json={}) for _ in range(3)]
        assert [r.status_code for r in first] == [422] * 3
        limited = await client.post("/users", json={"username": "x", "password": PASSWORD})
        assert limited.status_code == 429
        assert limited.json() == {"detail": "too many write requests, slow down"}
        # 3 writes in any 3 s (60 a minute, 3 at once): the oldest frees up within 3 s.
        assert 1 <= int(limited.headers["retry-after"]) <= 3
        assert (await client.patch("/users/1", json={})).status_code == 429
        # Reads are not limited.
        assert (await client.get("/users")).status_code == 200
    # Another client has its own bucket.
    async with serve(settings, client=("10.0.0.2", 50000), **limits) as other:
        assert (await other.post("/users", json={})).status_code == 422


def test_default_hashing_pool_works_across_event_loops() -> None:
    # A script may call asyncio.run more than once; the pool must not be tied to the first loop.
    pool = HashingPool(threads=1, wait_s=5, queue_max=4)
    try:

        async def three_at_once() -> list[str]:  # contended: the second and third must wait
            return await asyncio.gather(*(pool.hash(PASSWORD) for _ in range(3)))

        for _ in range(2):
            hashes = asyncio.run(three_at_once())
            assert all(h.startswith("$argon2id$") for h in hashes)
    finally:
        pool.close()
