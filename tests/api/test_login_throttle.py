"""Login throttling per account (ASVS 6.3.1) on both backends, in the database and in Redis,
shared by separate app instances as uvicorn workers and replicas share it."""

import asyncio
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from app import login_throttle
from app.config import Settings
from tests.support.auth import PASSWORD, log_in, register
from tests.support.serving import serve

WRONG = "wrong-passw0rd"
LIMIT = 5  # Settings.login_max_failures


@pytest.fixture(params=["database", "redis"])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The settings with the throttle's store: the database, or Redis under its own prefix."""
    if request.param == "redis":
        redis_settings: Settings = request.getfixturevalue("redis_settings")
        return redis_settings
    return settings


async def attempt(client: AsyncClient, username: str, password: str = WRONG) -> Response:
    return await client.post("/auth/login", data={"username": username, "password": password})


def assert_throttled(response: Response, window_s: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"detail": "too many failed logins for this account, retry later"}
    assert 1 <= int(response.headers["retry-after"]) <= window_s


async def test_past_the_limit_every_attempt_is_429_whatever_the_address(
    store_settings: Settings,
) -> None:
    async with serve(store_settings, client=("10.0.0.1", 40000)) as attacker:
        await register(attacker, "alice")
        statuses = [(await attempt(attacker, "alice")).status_code for _ in range(LIMIT)]
        assert statuses == [401] * LIMIT
        assert_throttled(await attempt(attacker, "alice"), store_settings.login_failure_window_s)
    # Another address, and even the right password: the account waits out the window.
    async with serve(store_settings, client=("10.9.9.9", 40000)) as owner:
        assert_throttled(
            await attempt(owner, "alice", PASSWORD), store_settings.login_failure_window_s
        )
        # Other accounts are not affected.
        await register(owner, "bob")


async def test_a_success_resets_the_count(store_settings: Settings) -> None:
    async with serve(store_settings) as client:
        await register(client, "carol")  # its login is a success too
        for _ in range(LIMIT - 1):
            assert (await attempt(client, "carol")).status_code == 401
        await log_in(client, "carol")
        statuses = [(await attempt(client, "carol")).status_code for _ in range(LIMIT + 1)]
        assert statuses == [401] * LIMIT + [429]


async def test_unknown_usernames_are_throttled_alike(store_settings: Settings) -> None:
    async with serve(store_settings) as client:
        await register(client, "dave")
        known = [(await attempt(client, "dave")).status_code for _ in range(LIMIT + 1)]
        unknown = [(await attempt(client, "ghost")).status_code for _ in range(LIMIT + 1)]
    assert known == unknown == [401] * LIMIT + [429]


async def test_the_count_is_shared_between_two_app_instances(store_settings: Settings) -> None:
    """Two lifespans: two engines (or Redis clients), as two workers or replicas have."""
    async with (
        serve(store_settings, client=("10.0.0.1", 1)) as first,
        serve(store_settings, client=("10.0.0.2", 2)) as second,
    ):
        await register(first, "erin")
        statuses = [
            (await attempt(first if i % 2 == 0 else second, "erin")).status_code
            for i in range(LIMIT)
        ]
        assert statuses == [401] * LIMIT
        assert_throttled(await attempt(second, "erin"), store_settings.login_failure_window_s)
        assert_throttled(await attempt(first, "erin"), store_settings.login_failure_window_s)


async def test_a_burst_of_parallel_guesses_gets_no_more_than_the_limit(
    store_settings: Settings,
) -> None:
    """Attempts are counted before the password is checked, atomically: twenty guesses at
    once across two instances still get only LIMIT verifications."""
    async with serve(store_settings) as first, serve(store_settings) as second:
        await register(first, "frank")
        responses = await asyncio.gather(
            *(attempt(first if i % 2 else second, "frank", f"guess-{i}-pw") for i in range(20))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * LIMIT + [429] * (20 - LIMIT), statuses


async def test_the_database_window_ends_and_the_account_opens_again(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    await register(client, "gina")
    for _ in range(LIMIT):
        await attempt(client, "gina")
    assert (await attempt(client, "gina", PASSWORD)).status_code == 429
    runtime = app.state.runtime
    later = runtime.clock() + timedelta(seconds=settings.login_failure_window_s)
    runtime.clock = lambda: later
    await log_in(client, "gina")


async def test_the_redis_window_ends_and_the_account_opens_again(
    redis_settings: Settings,
) -> None:
    # Real time here (Redis expires the key): a short window, and cheap hashing so that the
    # attempts fit well inside it even on a loaded machine.
    short = redis_settings.model_copy(
        update={"login_failure_window_s": 3, "hash_memory_kib": 8, "hash_time_cost": 1}
    )
    async with serve(short) as client:
        await register(client, "hank")
        for _ in range(LIMIT):
            await attempt(client, "hank")
        throttled = await attempt(client, "hank", PASSWORD)
        assert_throttled(throttled, 3)
        await asyncio.sleep(int(throttled.headers["retry-after"]) + 0.2)
        await log_in(client, "hank")


async def test_guessing_the_current_password_is_throttled_too(store_settings: Settings) -> None:
    """A stolen session cannot be used to brute-force the password it does not know."""
    async with serve(store_settings) as client:
        ivy = await register(client, "ivy")
        body = {"password": "takeover-pw-1", "current_password": WRONG}
        url = f"/users/{ivy.id}"
        statuses = [
            (await client.patch(url, json=body, headers=ivy.headers)).status_code
            for _ in range(LIMIT + 1)
        ]
        assert statuses == [403] * LIMIT + [429]
        assert (await attempt(client, "ivy", PASSWORD)).status_code == 429


async def test_an_unreachable_redis_is_503_with_retry_after_not_an_open_door(
    settings: Settings,
) -> None:
    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    async with serve(dead) as client:
        created = await client.post("/users", json={"username": "jack", "password": PASSWORD})
        assert created.status_code == 201  # registration does not need the throttle
        response = await attempt(client, "jack", PASSWORD)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"detail": "login temporarily unavailable, retry later"}


async def test_concurrent_attempts_on_many_accounts_never_fail_on_locks(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with the purge of ended windows in the attempt's own transaction, its range
    locks deadlocked with other attempts' upserts on MariaDB (503s). Worst case here: every
    attempt purges, from three app instances at once."""
    monkeypatch.setattr(login_throttle, "PURGE_EVERY_S", 0)
    cheap = store_settings.model_copy(update={"hash_memory_kib": 8, "hash_time_cost": 1})
    async with serve(cheap) as a, serve(cheap) as b, serve(cheap) as c:
        clients = (a, b, c)
        for round_ in range(3):
            responses = await asyncio.gather(
                *(attempt(clients[i % 3], f"x{round_}-{i % 20}") for i in range(60))
            )
            statuses = {r.status_code for r in responses}
            assert statuses == {401}, [r.text for r in responses if r.status_code != 401]
