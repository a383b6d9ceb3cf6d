"""Fuzzing on both backends: schemathesis against our own OpenAPI schema, served by uvicorn,
and a hypothesis property that every username the API accepts round-trips byte-identical."""

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
import uvicorn
from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from tests.support.auth import Account, register_admin
from tests.support.net import free_port
from tests.support.serving import serve

# Small budgets keep the suite fast; CI runs every operation in both modes on both backends.
EXAMPLES_PER_MODE = 60
ROUND_TRIP_EXAMPLES = 80
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(name="settings")
def cheap_hashing_settings(settings: Settings) -> Settings:
    # Hashing is not under test here; a cheap argon2id lets many examples run in seconds.
    return settings.model_copy(update={"hash_memory_kib": 1024, "hash_time_cost": 1})


@pytest.fixture
async def admin(settings: Settings, db: AsyncEngine) -> Account:
    """An admin's token: PATCH and DELETE get past authorization to reach their validation."""
    async with serve(settings) as client:
        return await register_admin(client, db)


@contextmanager
def running(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on a loopback port in a thread of its own; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def fuzz(
    base_url: str, schema_dict: dict[str, Any], mode: GenerationMode, headers: dict[str, str]
) -> None:
    """Every operation, `EXAMPLES_PER_MODE` cases in all; negative cases must be refused."""
    schema = schemathesis.openapi.from_dict(schema_dict)
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=10)

    check()


async def test_schemathesis_finds_no_server_error_or_schema_violation(
    settings: Settings, admin: Account
) -> None:
    schema_dict = create_app(settings).openapi()
    with running(settings) as base_url:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # As an admin (unless a case sends its own Authorization), then as nobody.
            for headers in (admin.headers, {}):
                await asyncio.to_thread(fuzz, base_url, schema_dict, mode, headers)


# Anything at all (control characters, lone surrogates, 11 characters), and text from every
# script, symbol set and emoji plane, which the API should mostly accept.
usernames = st.one_of(
    st.text(alphabet=st.characters(codec=None), min_size=0, max_size=11),
    st.text(alphabet=st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=10),
)


@settings(
    max_examples=ROUND_TRIP_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(username=usernames)
async def test_every_accepted_username_round_trips_byte_identical(
    client: AsyncClient, db: AsyncEngine, admin: Account, username: str
) -> None:
    # json.dumps escapes what httpx's encoder refuses (lone surrogates), as a client could send.
    body = json.dumps({"username": username, "password": "round-Trip-pw"})
    created = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )
    assert created.status_code in (201, 422), created.text
    if created.status_code == 422:
        return
    user_id = created.json()["id"]
    try:
        assert created.json()["username"].encode() == username.encode()
        shown = await client.get(f"/show/{user_id}")
        assert shown.json()["username"].encode() == username.encode()
        async with db.connect() as connection:
            stored = (
                await connection.execute(
                    text("SELECT username FROM user_list WHERE id = :id"), {"id": user_id}
                )
            ).scalar_one()
        assert stored.encode() == username.encode()
        listed = await client.get("/users", params={"after_id": user_id - 1, "limit": 1})
        assert listed.json()["items"][0]["username"].encode() == username.encode()
    finally:
        deleted = await client.delete(f"/users/{user_id}", headers=admin.headers)
        assert deleted.status_code == 204
