"""Metrics on both backends: request counts and latencies by route template, refusals by reason,
pool and hashing gauges, the schema revision and the migration journal; and, against
`python -m app.serve --workers 2`, one set of figures whichever worker answers the scrape."""

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.db import database_url
from app.db_pool import CountingQueuePool
from app.hashing import HashingPool
from app.main import create_app
from app.metrics import sample_runtime
from tests.support import alembic
from tests.support.alembic import HEAD, revisions
from tests.support.server import Served, serving

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


@asynccontextmanager
async def serve(settings: Settings, **changes: object) -> AsyncIterator[AsyncClient]:
    app = create_app(settings.model_copy(update=changes))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


async def test_requests_are_counted_by_route_template_and_status(client: AsyncClient) -> None:
    before = await scrape(client)
    for user_id in (7, 8, 9):
        assert (await client.get(f"/show/{user_id}")).status_code == 404
    after = await scrape(client)
    labels = {"method": "GET", "route": "/show/{user_id}", "status": "404"}
    assert (
        value(after, "http_requests_total", **labels)
        - value(before, "http_requests_total", **labels)
        == 3
    )
    assert (
        value(after, "http_request_duration_seconds_count", **labels)
        - value(before, "http_request_duration_seconds_count", **labels)
        == 3
    )
    assert not any("/show/7" in str(key) for key in after), "a raw path became a label"


async def test_refusals_are_counted_by_status_and_reason(client: AsyncClient) -> None:
    before = await scrape(client)
    big = await client.post(
        "/users", content=b"x" * 20_000, headers={"content-type": "application/json"}
    )
    assert big.status_code == 413
    after = await scrape(client)
    assert (
        value(after, "user_service_refused_total", status="413", reason="body_too_large")
        - value(before, "user_service_refused_total", status="413", reason="body_too_large")
        == 1
    )


async def test_a_busy_hashing_pool_shows_its_queue_and_its_rejections(
    app: FastAPI, client: AsyncClient
) -> None:
    state = app.state.runtime
    # A hash of about a second keeps the one thread busy however loaded the machine is, so the
    # queue and the rejections below do not depend on timing.
    slow = PasswordHash((Argon2Hasher(time_cost=40, memory_cost=19_456, parallelism=1),))
    small = HashingPool(threads=1, wait_s=0.2, queue_max=2, password_hash=slow)
    state.hasher.close()
    state.hasher = small
    before = await scrape(client)
    hashes = [asyncio.create_task(small.hash("queued-Passw0rd")) for _ in range(3)]
    for _ in range(100):  # until both waiters queue (at once on a quiet machine)
        if small.waiting == 2:
            break
        await asyncio.sleep(0.01)
    assert small.waiting == 2
    sample_runtime(state)
    during = await scrape(client)
    assert value(during, "user_service_hashing_queue_depth") == 2
    await asyncio.gather(*hashes, return_exceptions=True)
    burst = await asyncio.gather(
        *(
            client.post("/users", json={"username": f"h{i}", "password": "burst-Passw0rd"})
            for i in range(6)
        )
    )
    assert 503 in [r.status_code for r in burst]
    after = await scrape(client)
    rejected = value(after, "user_service_refused_total", status="503", reason="hashing_busy")
    assert rejected - value(
        before, "user_service_refused_total", status="503", reason="hashing_busy"
    ) == sum(r.status_code == 503 for r in burst)


async def test_waiting_for_a_pooled_connection_shows(settings: Settings) -> None:
    url = database_url(settings.database_url)
    engine = create_async_engine(
        url, poolclass=CountingQueuePool, pool_size=1, max_overflow=0, pool_timeout=10
    )
    pool = engine.sync_engine.pool
    assert isinstance(pool, CountingQueuePool)
    try:
        async with engine.connect():
            assert pool.checkedout() == 1
            second = asyncio.create_task(engine.connect().__aenter__())
            await asyncio.sleep(0.2)
            assert pool.waiting == 1
        connection = await second
        assert pool.waiting == 0
        await connection.close()
    finally:
        await engine.dispose()


async def test_pool_gauges_are_exported(app: FastAPI, client: AsyncClient) -> None:
    sample_runtime(app.state.runtime)
    samples = await scrape(client)
    assert ("user_service_db_connections_in_use", frozenset({("pool", "main")})) in samples
    assert ("user_service_db_connections_waiting", frozenset({("pool", "main")})) in samples


async def test_schema_revision_and_migration_journal_are_exported(
    client: AsyncClient, settings: Settings
) -> None:
    samples = await scrape(client)
    assert (
        value(samples, "user_service_schema_info", database_revision=HEAD, code_revision=HEAD) == 1
    )
    assert value(samples, "user_service_migration_steps", direction="upgrade", result="ok") == len(
        revisions()
    )
    assert value(samples, "user_service_database_reachable") == 1
    assert value(samples, "user_service_migration_last_step_timestamp_seconds") > time.time() - 3600

    await alembic.downgrade(settings.database_url, "0001")
    samples = await scrape(client)
    assert (
        value(samples, "user_service_schema_info", database_revision="0001", code_revision=HEAD)
        == 1
    )
    assert (
        value(samples, "user_service_schema_info", database_revision=HEAD, code_revision=HEAD) == 0
    )
    downgraded = len(revisions()) - 1
    assert (
        value(samples, "user_service_migration_steps", direction="downgrade", result="ok")
        == downgraded
    )


async def test_metrics_are_refused_outside_the_allowed_networks(settings: Settings) -> None:
    app = create_app(settings)
    transport = ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        response = await client.get("/metrics")
    assert response.status_code == 403
    assert response.json() == {"detail": "metrics are not served to this address"}


async def test_metrics_can_be_turned_off(settings: Settings) -> None:
    async with serve(settings, metrics_enabled=False) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/livez")).status_code == 200


# Two workers, one set of figures.


def livez_on_new_connections(served: Served, count: int) -> None:
    barrier = threading.Barrier(count)

    def one() -> None:
        with httpx.Client(headers={"Connection": "close"}) as http:
            barrier.wait()
            assert http.get(f"{served.url}/livez").status_code == 200

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_a_scrape_of_either_worker_counts_both(database_url_at_head: str) -> None:
    with serving(database_url_at_head, workers=2) as served:
        for _ in range(6):
            livez_on_new_connections(served, 16)
            livez = [line for line in served.access_lines() if line["route"] == "/livez"]
            if len({line["pid"] for line in livez}) == 2:
                break
        else:
            pytest.fail("every /livez went to one worker; rerun")
        time.sleep(0.5)  # the last answers' counts and log lines are written after they go out
        served_livez = len([line for line in served.access_lines() if line["route"] == "/livez"])
        scrapes = []
        for _ in range(40):  # until each worker has answered at least one scrape
            with httpx.Client(headers={"Connection": "close"}) as http:
                scrapes.append(parse(http.get(f"{served.url}/metrics").text))
            time.sleep(0.05)
            scraped_by = {
                line["pid"] for line in served.access_lines() if line["route"] == "/metrics"
            }
            if len(scraped_by) == 2 and len(scrapes) >= 4:
                break
    counts = {
        value(s, "http_requests_total", method="GET", route="/livez", status="200") for s in scrapes
    }
    assert counts == {served_livez}, (counts, served_livez)
    assert len(scraped_by) == 2, "every scrape went to one worker; the test proves less"
    for samples in scrapes:
        assert (
            value(samples, "user_service_schema_info", database_revision=HEAD, code_revision=HEAD)
            == 1
        )
        assert ("user_service_db_connections_in_use", frozenset({("pool", "main")})) in samples


async def test_garbage_collections_are_timed_while_the_app_runs(settings: Settings) -> None:
    """Each collection holds every request in flight on its worker: the tail latency's first
    suspect, so its count and pauses are exported by generation (only while the app runs)."""
    callbacks_before = len(gc.callbacks)
    async with serve(settings) as client:
        before = await scrape(client)
        gc.collect()
        after = await scrape(client)
        assert len(gc.callbacks) == callbacks_before + 1
    counted = value(after, "user_service_gc_pause_seconds_count", generation="2")
    assert counted >= value(before, "user_service_gc_pause_seconds_count", generation="2") + 1
    assert value(after, "user_service_gc_pause_seconds_sum", generation="2") > 0
    assert len(gc.callbacks) == callbacks_before  # gone with the app
