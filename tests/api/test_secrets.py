"""No password and no hash in any log line, response body or validation error, on both backends.

The run logs everything, DEBUG and up from every logger, as an operator chasing a problem
would turn on, and creates, patches and fails to create users in every way a client can. The
log lines are checked as the records Python logged and as the JSON lines the service writes to
stderr, decoded, so a secret cannot hide behind JSON's escapes.
"""

import json
import logging
from typing import Any

import pytest
from httpx import AsyncClient, Response
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings

FIRST = "first-Secret-4821"
SECOND = "second-Secret-9377"
DUPLICATE = "dup-Secret-5150"
REJECTED = ["sunshine", "tiny-pw", "x" * 129, "nul\x00-Secret-77"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The service's own level setting too, or its start-up would raise the root back to INFO.
    return settings.model_copy(update={"log_level": "DEBUG"})


def json_values(value: Any) -> list[str]:
    """Every key and string value in a decoded JSON line, however deep."""
    if isinstance(value, dict):
        return [text for k, v in value.items() for text in (k, *json_values(v))]
    if isinstance(value, list):
        return [text for v in value for text in json_values(v)]
    return [str(value)]


@pytest.fixture(autouse=True)
def log_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy keeps its own loggers at WARNING unless asked: ask, as an operator would.
    for name in ("sqlalchemy.engine", "sqlalchemy.pool", "aiosqlite", "aiomysql"):
        caplog.set_level(logging.DEBUG, logger=name)


async def test_no_password_or_hash_in_logs_or_responses(
    client: AsyncClient,
    db: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    responses: list[Response] = []

    async def call(method: str, path: str, **kwargs: object) -> Response:
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        responses.append(response)
        return response

    created = await call("POST", "/users", json={"username": "secret", "password": FIRST})
    assert created.status_code == 201
    user_id = created.json()["id"]
    assert (await call("PATCH", f"/users/{user_id}", json={"password": SECOND})).status_code == 200
    assert (await call("PATCH", f"/users/{user_id}", json={"email": "s@ex.io"})).status_code == 200
    duplicate = await call("POST", "/user/add", json={"username": "secret", "password": DUPLICATE})
    assert duplicate.status_code == 409
    for password in REJECTED:
        body = json.dumps({"username": "other", "password": password})
        rejected = await call(
            "POST", "/users", content=body, headers={"content-type": "application/json"}
        )
        assert rejected.status_code == 422
        patched = await call("PATCH", f"/users/{user_id}", json={"password": password})
        assert patched.status_code == 422
    assert (await call("POST", "/users", json=[FIRST, SECOND])).status_code == 422
    assert (await call("GET", f"/users/{user_id}")).status_code == 200
    assert (await call("GET", "/users")).status_code == 200

    async with db.connect() as connection:
        hashes = list(
            (await connection.execute(text("SELECT password_hash FROM user_list"))).scalars()
        )
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)

    secrets = [FIRST, SECOND, DUPLICATE, *REJECTED, *hashes, "$argon2"]
    # A hash split into its salt and digest must not show up either.
    secrets += [part for h in hashes for part in h.split("$")[-2:]]
    out, err = capfd.readouterr()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    decoded = "\n".join(text for line in lines for text in json_values(line))
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text + out + err
    assert "INSERT INTO user_list" in logged, "the statement log is off: the test proves nothing"
    assert "INSERT INTO user_list" in decoded, "the JSON log is off: the test proves less"
    assert any(line.get("logger") == "app.access" for line in lines)
    assert all(line.get("request_id") for line in lines if line.get("logger") == "app.access")
    for secret in secrets:
        assert secret not in logged, "a log line contains password material"
        assert secret not in decoded, "a JSON log line contains password material"
        for response in responses:
            assert secret not in response.text, f"{response.request.url} echoes password material"


MARKER = "Qz7!"


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rest=st.text(min_size=0, max_size=140),
    username=st.sampled_from(["", " x", "x" * 11, "ok"]),
    email=st.sampled_from([None, "bad", "x" * 20 + "@ex.io"]),
)
async def test_validation_errors_never_echo_any_password(
    client: AsyncClient, rest: str, username: str, email: str | None
) -> None:
    """Whatever is wrong with a body (the password too short, too long, common, not text, or
    only the other fields), the 422 names the problem, never the password or a part of it."""
    password = MARKER + rest
    body: dict[str, object] = {"username": username, "password": password, "email": email}
    if username == "ok" and email is None:
        body["unexpected"] = True  # keep every body invalid: nothing is created or hashed
    content = json.dumps(body)
    for method, path in (("POST", "/users"), ("POST", "/user/add"), ("PATCH", "/users/1")):
        response = await client.request(
            method, path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code in (404, 422), response.text
        assert MARKER not in response.text
        assert password not in response.text
