"""Galera: concurrent writes of one row through two nodes conflict at COMMIT (error 1213), and
the service runs the losing request again instead of failing it."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.config import Settings
from app.main import create_app
from tests.support.alembic import run_alembic
from tests.support.auth import register

ROUNDS = 6


@pytest.fixture
async def clients(cluster_urls: list[str]) -> AsyncIterator[list[AsyncClient]]:
    """The service twice, on the first two nodes of a database migrated to head."""
    await asyncio.to_thread(run_alembic, cluster_urls[0], "upgrade", "head")
    async with AsyncExitStack() as stack:
        opened = []
        for url in cluster_urls[:2]:
            app: FastAPI = create_app(Settings(database_url=url, hash_wait_s=60))
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = AsyncClient(transport=ASGITransport(app=app), base_url="http://test")
            opened.append(await stack.enter_async_context(client))
        yield opened


async def test_one_row_updated_through_two_nodes_at_once_never_fails(
    clients: list[AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.write_conflicts")
    dana = await register(clients[0], "dana")
    await asyncio.sleep(0.5)  # the session row reaches the second node

    async def change(client: AsyncClient, n: int) -> int:
        response = await client.patch(
            f"/users/{dana.id}", json={"email": f"d{n}@ex.io"}, headers=dana.headers
        )
        return response.status_code

    statuses: list[int] = []
    for round_ in range(ROUNDS):
        batch = [change(clients[i % 2], round_ * 10 + i) for i in range(8)]
        statuses += await asyncio.gather(*batch)
    retries = sum("conflict (1213)" in r.getMessage() for r in caplog.records)
    print(f"{len(statuses)} updates, {retries} retried after a write conflict")
    assert statuses == [200] * len(statuses)
    assert retries > 0, "no conflict happened: the test did not test anything"
