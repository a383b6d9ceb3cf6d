"""Probes on both backends: /livez never touches the database, /readyz and /health say 503 when
the schema is not the code's, and every database error a client meets is a JSON body."""

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app import crud
from app.config import Settings
from app.db import create_engine
from tests.support import alembic
from tests.support.alembic import HEAD

UNREACHABLE = "mysql+aiomysql://nobody@127.0.0.1:9/none"
PASSWORD = "probe-Passw0rd"


async def cut_database(app: FastAPI) -> None:
    state = app.state.runtime
    await state.engine.dispose()
    state.engine = create_engine(Settings(database_url=UNREACHABLE))


async def test_livez_and_readyz_answer_ok_at_head(client: AsyncClient) -> None:
    assert (await client.get("/livez")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


async def test_livez_answers_while_the_database_is_down_and_readyz_does_not(
    app: FastAPI, client: AsyncClient
) -> None:
    await cut_database(app)
    try:
        live = await client.get("/livez")
        ready = await client.get("/readyz")
    finally:
        await app.state.runtime.engine.dispose()
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "1"
    assert ready.json() == {"detail": "database unavailable, retry later"}


SOME_TOKEN = {"Authorization": "Bearer some-token"}


async def test_after_downgrade_to_base_probes_say_503_and_user_routes_answer_json(
    client: AsyncClient, settings: Settings
) -> None:
    created = await client.post("/users", json={"username": "gone", "password": PASSWORD})
    assert created.status_code == 201
    await alembic.downgrade(settings.database_url, "base")

    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "detail": "database schema does not match this service, retry later",
        "revision": None,
        "code_revision": HEAD,
    }
    health = await client.get("/health")
    assert health.status_code == 503
    assert health.json() == {
        "detail": "database schema does not match this service, retry later",
        "status": "schema does not match the code",
        "database": "reachable",
        "revision": None,
        "code_revision": HEAD,
        "schema_matches_code": False,
    }
    assert (await client.get("/livez")).status_code == 200
    for method, path, body in (
        ("GET", "/show/1", None),
        ("GET", "/users", None),
        ("POST", "/users", {"username": "late", "password": PASSWORD}),
        ("DELETE", "/users/1", None),
    ):
        # A token makes even DELETE reach the database (without one it is a 401 first).
        response = await client.request(method, path, json=body, headers=SOME_TOKEN)
        assert response.status_code == 503, (path, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "detail": "database schema does not match this service, retry later"
        }
        assert response.headers["retry-after"] == "1"


async def test_health_is_503_when_the_schema_is_behind(
    client: AsyncClient, settings: Settings
) -> None:
    await alembic.downgrade(settings.database_url, "0001")
    health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["revision"] == "0001"
    assert health.json()["schema_matches_code"] is False


async def test_an_unexpected_error_is_a_json_500_with_the_request_id(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(crud, "list_users", broken)
    response = await client.get("/users", headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["x-request-id"] == "bug-1"
    assert response.headers["x-content-type-options"] == "nosniff"
