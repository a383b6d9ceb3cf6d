"""The edge in-process, on both backends: Host names, the headers on every answer, the docs
switch, ids written one way only, JSON keys given once; and settings checked at start."""

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from app.migrate.config import PROJECT_ROOT
from tests.support.auth import register

PASSWORD = "edge-Passw0rd"
JSON = {"content-type": "application/json"}


async def make_user(client: AsyncClient, name: str = "target") -> int:
    response = await client.post("/users", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201
    user_id: int = response.json()["id"]
    return user_id


async def count_users(db: AsyncEngine) -> int:
    async with db.connect() as connection:
        return int((await connection.execute(text("SELECT COUNT(*) FROM user_list"))).scalar_one())


@asynccontextmanager
async def serve_as(settings: Settings, host: str) -> AsyncIterator[AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url=f"http://{host}") as client,
    ):
        yield client


@pytest.fixture
async def default_hosts(settings: Settings) -> AsyncIterator[AsyncClient]:
    """The app with the default ALLOWED_HOSTS, talked to as localhost."""
    plain = settings.model_copy(
        update={"allowed_hosts": Settings.model_fields["allowed_hosts"].default}
    )
    async with serve_as(plain, "localhost:8000") as client:
        yield client


async def test_a_rebinding_host_cannot_delete_a_user(
    default_hosts: AsyncClient, db: AsyncEngine
) -> None:
    user_id = await make_user(default_hosts)
    response = await default_hosts.delete(
        f"/users/{user_id}", headers={"Host": "rebind.attacker.example"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "this Host is not served here"}
    assert response.headers["x-request-id"]
    assert await count_users(db) == 1
    assert (await default_hosts.get(f"/users/{user_id}")).status_code == 200


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"])
async def test_the_local_names_are_served_by_default(default_hosts: AsyncClient, host: str) -> None:
    response = await default_hosts.get("/users", headers={"Host": host})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/health", "/metrics"])
async def test_probes_and_metrics_answer_any_host(default_hosts: AsyncClient, path: str) -> None:
    response = await default_hosts.get(path, headers={"Host": "10.1.2.3:8000"})
    assert response.status_code == 200


async def test_allowed_hosts_takes_names_and_wildcards(settings: Settings) -> None:
    configured = settings.model_copy(update={"allowed_hosts": ["api.example.com", "*.example.org"]})
    async with serve_as(configured, "api.example.com") as client:
        assert (await client.get("/users")).status_code == 200
        assert (await client.get("/users", headers={"Host": "a.example.org"})).status_code == 200
        assert (await client.get("/users", headers={"Host": "localhost"})).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/users", 200), ("GET", "/show/999", 404), ("GET", "/show/x", 422),
     ("POST", "/users", 422), ("GET", "/nowhere", 404), ("GET", "/livez", 200)],
)  # fmt: skip
async def test_every_answer_says_nosniff_and_no_store(
    client: AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_docs_can_be_turned_off(settings: Settings) -> None:
    async with serve_as(settings.model_copy(update={"docs_enabled": False}), "test") as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.get("/users")).status_code == 200


async def test_docs_are_on_by_default(client: AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await client.get(path)).status_code == 200, path


@pytest.mark.parametrize(
    "written", ["1_0", "+1", "01", "%201", "1%20", "0x1", "\uff11", "1.0", "-0", "00"]
)
async def test_ids_in_paths_are_plain_decimal_or_422(client: AsyncClient, written: str) -> None:
    # As the owner: without a token, PATCH and DELETE would stop at the 401 first.
    owner = await register(client, "target")
    assert owner.id == 1
    for method, path in (("GET", "/show/{}"), ("GET", "/users/{}"), ("DELETE", "/users/{}")):
        response = await client.request(method, path.format(written), headers=owner.headers)
        assert response.status_code == 422, (method, path, written, response.text)
        assert response.json()["detail"][0]["loc"] == ["path", "user_id"]
    patched = await client.patch(
        f"/users/{written}", json={"email": "a@ex.io"}, headers=owner.headers
    )
    assert patched.status_code == 422
    assert (await client.get("/users/1", headers=owner.headers)).json()["email"] is None


async def test_the_largest_id_is_plain_decimal_too(client: AsyncClient) -> None:
    assert (await client.get(f"/users/{2**63 - 1}")).status_code == 404
    assert (await client.get(f"/users/{2**63}")).status_code == 422
    assert (await client.get("/users/10")).status_code == 404  # 1_0 is not 10


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "dup", "password": "edge-Passw0rd", "username": "other"}',
        b'{"username": "dup", "password": "x", "password": "edge-Passw0rd"}',
        b'{"username": "dup", "password": "edge-Passw0rd", "email": null, "email": "a@ex.io"}',
    ],
)
async def test_a_key_given_twice_is_a_422_and_nothing_is_written(
    client: AsyncClient, db: AsyncEngine, body: bytes
) -> None:
    for path in ("/users", "/user/add"):
        response = await client.post(path, content=body, headers=JSON)
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["type"] == "json_invalid"
        assert error["msg"].startswith("duplicate key ")
        assert "edge-Passw0rd" not in response.text
    assert await count_users(db) == 0


async def test_a_key_given_twice_in_a_patch_changes_nothing(
    client: AsyncClient, db: AsyncEngine
) -> None:
    owner = await register(client, "target")
    body = b'{"email": "a@ex.io", "email": null}'
    response = await client.patch(
        f"/users/{owner.id}", content=body, headers={**JSON, **owner.headers}
    )
    assert response.status_code == 422
    assert (await client.get(f"/users/{owner.id}", headers=owner.headers)).json()["email"] is None


async def test_json_with_distinct_keys_at_every_level_still_passes(client: AsyncClient) -> None:
    body = b'{"username": "nested", "password": "edge-Passw0rd", "email": "n@ex.io"}'
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 201


# Settings: checked at start, reported without their values.


@pytest.mark.parametrize(
    ("name", "value"),
    [("request_timeout_s", -1), ("db_pool_timeout_s", 0), ("db_pool_size", 0),
     ("hash_wait_s", -0.5), ("max_body_bytes", -1), ("header_timeout_s", 0),
     ("max_header_bytes", 100), ("keep_alive_timeout_s", 0), ("hash_thread_nice", 20)],
)  # fmt: skip
def test_out_of_range_settings_are_refused(name: str, value: float) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, **{name: value})  # type: ignore[arg-type]
    assert name in str(raised.value)


def test_an_unknown_setting_in_env_file_is_refused_without_its_value(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DATABSE_URL=mysql+aiomysql://root:s3cret-pw@db/app\nLOG_LEVEL=INFO\n")
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=env)
    assert "unknown setting(s) DATABSE_URL" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


def test_a_bad_setting_stops_app_serve_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.serve", "--port", "9"],
        cwd=PROJECT_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "REQUEST_TIMEOUT_S": "-3",
            "DATABASE_URL": "sqlite+aiosqlite:///x.db",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid settings, not starting" in result.stderr
    assert "request_timeout_s" in result.stderr


def test_list_settings_are_comma_separated_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example, *.b.example")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1,10.2.0.0/16")
    settings = Settings(_env_file=None)
    assert settings.allowed_hosts == ["a.example", "*.b.example"]
    assert settings.forwarded_allow_ips == ["10.0.0.1", "10.2.0.0/16"]
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "proxy.internal")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
