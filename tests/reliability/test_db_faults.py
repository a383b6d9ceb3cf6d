"""Database faults on MariaDB, through a proxy the test controls: cut, stall, restore, idle drop.

A fault must give a quick 503 with the JSON error shape (never a hang), `/health` must say
503, and once the database is back the same app must recover within seconds, with no restart.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.config import Settings
from app.main import create_app
from tests.support.auth import bearer, log_in
from tests.support.backends import url_string
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.parametrize("backend", ["mariadb"])

PASSWORD = "fault-tolerant-pw"
FAULT_ANSWER_S = 2.0
RECOVERY_S = 5.0


@pytest.fixture
def settings(database_url_at_head: str, proxy: TcpProxy) -> Settings:
    """The app reaches MariaDB only through the proxy, with the default timeouts."""
    url = make_url(database_url_at_head).set(host="127.0.0.1", port=proxy.port)
    return Settings(database_url=url_string(url))


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield app, client


async def timed(call: Awaitable[Response]) -> tuple[Response, float]:
    start = time.monotonic()
    # A hang fails the test (in a few seconds) instead of stalling the suite.
    response = await asyncio.wait_for(call, FAULT_ANSWER_S + 3)
    return response, time.monotonic() - start


def requests(
    client: AsyncClient, user_id: int, token: str
) -> list[Callable[[], Awaitable[Response]]]:
    auth = bearer(token)
    login = {"username": "someone", "password": PASSWORD}
    return [
        lambda: client.get(f"/users/{user_id}"),
        lambda: client.get(f"/show/{user_id}"),
        lambda: client.get("/users"),
        lambda: client.post("/users", json={"username": "new", "password": PASSWORD}),
        lambda: client.patch(f"/users/{user_id}", json={"email": "x@ex.io"}, headers=auth),
        lambda: client.delete(f"/users/{user_id}", headers=auth),
        lambda: client.get("/users/me", headers=auth),
        lambda: client.post("/auth/login", data=login),
    ]


async def assert_unavailable_quickly(client: AsyncClient, user_id: int, token: str) -> None:
    answers = await asyncio.gather(
        *(timed(call()) for call in requests(client, user_id, token)),
        timed(client.get("/health")),
    )
    for response, elapsed in answers:
        assert response.status_code == 503, (response.request.url, response.text)
        assert isinstance(response.json()["detail"], str)
        assert elapsed < FAULT_ANSWER_S, (response.request.url, elapsed)
        if response.request.url.path != "/health":
            assert response.headers["retry-after"]


async def wait_for_recovery(client: AsyncClient, user_id: int) -> float:
    """Seconds until the user can be read again; fails after RECOVERY_S."""
    start = time.monotonic()
    while time.monotonic() - start < RECOVERY_S:
        response = await client.get(f"/users/{user_id}")
        if response.status_code == 200:
            return time.monotonic() - start
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.1)
    pytest.fail(f"no recovery within {RECOVERY_S} s of the database coming back")


async def create(client: AsyncClient, username: str) -> dict[str, Any]:
    """Register `username`; the answer, with the token of a login added as "token"."""
    response = await client.post("/users", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    body["token"] = await log_in(client, username, PASSWORD)
    return body


async def assert_all_reads_succeed(client: AsyncClient, user_id: int) -> None:
    # More concurrent reads than the pool holds idle: every pooled connection must be usable.
    responses = await asyncio.gather(*(client.get(f"/users/{user_id}") for _ in range(25)))
    assert [r.status_code for r in responses] == [200] * 25
    assert (await client.get("/health")).status_code == 200


async def test_cut_database_answers_503_quickly_then_recovers(
    client: AsyncClient, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await create(client, "before")
    await assert_all_reads_succeed(client, user["id"])  # fill the pool with soon-stale links

    proxy.cut()
    await assert_unavailable_quickly(client, user["id"], user["token"])

    proxy.restore()
    await wait_for_recovery(client, user["id"])
    await assert_all_reads_succeed(client, user["id"])
    assert (await create(client, "after"))["username"] == "after"
    # The failures were logged, and without the passwords of the writes that failed.
    assert "database unavailable" in caplog.text
    assert PASSWORD not in caplog.text and "$argon2" not in caplog.text


async def test_stalled_database_answers_503_within_deadline_then_recovers(
    settings: Settings, proxy: TcpProxy
) -> None:
    # Nothing in the driver bounds a read on an open connection: the request deadline does.
    async with serve(settings.model_copy(update={"request_timeout_s": 1.5})) as (_, client):
        user = await create(client, "before")
        await assert_all_reads_succeed(client, user["id"])

        proxy.stall()
        await assert_unavailable_quickly(client, user["id"], user["token"])

        proxy.restore()
        await wait_for_recovery(client, user["id"])
        await assert_all_reads_succeed(client, user["id"])


async def test_repeated_cuts_never_need_a_restart(client: AsyncClient, proxy: TcpProxy) -> None:
    user = await create(client, "flappy")
    for _ in range(3):
        proxy.cut()
        assert (await client.get(f"/users/{user['id']}")).status_code == 503
        proxy.restore()
        await wait_for_recovery(client, user["id"])


async def test_connections_dropped_after_wait_timeout_are_replaced(
    app: FastAPI, client: AsyncClient
) -> None:
    # The server closes a connection idle for longer than its wait_timeout; shorten it to 1 s
    # for this app's connections, and let the pool sit idle past it.
    engine = app.state.runtime.engine
    await engine.dispose()

    @event.listens_for(engine.sync_engine, "connect")
    def short_wait_timeout(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET SESSION wait_timeout = 1")
        cursor.close()

    user = await create(client, "idler")
    await assert_all_reads_succeed(client, user["id"])
    await asyncio.sleep(2.5)
    response = await client.get(f"/users/{user['id']}")
    assert response.status_code == 200, response.text
    await assert_all_reads_succeed(client, user["id"])


async def test_connect_to_a_database_that_never_answers_fails_within_connect_timeout(
    settings: Settings, proxy: TcpProxy
) -> None:
    # Without the request deadline to fall back on, the connect timeout alone must bound a
    # new connection whose TCP connect succeeds but whose handshake never comes.
    patient = settings.model_copy(update={"request_timeout_s": 60.0})
    async with serve(patient) as (app, client):
        user = await create(client, "patient")
        # Every request now needs a new connection (the login filled the read pool too).
        await app.state.runtime.engine.dispose()
        if app.state.runtime.read_pool is not None:
            await app.state.runtime.read_pool.dispose()
        proxy.stall()
        answers = await asyncio.gather(
            timed(client.get(f"/users/{user['id']}")), timed(client.get("/health"))
        )
        for response, elapsed in answers:
            assert response.status_code == 503, response.text
            assert elapsed < patient.db_connect_timeout_s + 1, elapsed
        proxy.restore()
        await wait_for_recovery(client, user["id"])
