"""No password, hash, token or token hash in any log line, response body or validation error,
on both backends.

The run logs everything, DEBUG and up from every logger, as an operator chasing a problem
would turn on, and creates, patches and fails to create users in every way a client can. The
log lines are checked as the records Python logged and as the JSON lines the service writes to
stderr, decoded, so a secret cannot hide behind JSON's escapes.
"""

import hashlib
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
from tests.support.auth import Account, bearer, register, register_admin

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

    tokens: list[str] = []

    async def log_in(username: str, password: str, status: int = 200) -> str | None:
        answer = await call(
            "POST", "/auth/login", data={"username": username, "password": password}
        )
        assert answer.status_code == status, answer.text
        if status != 200:
            return None
        token: str = answer.json()["access_token"]
        tokens.append(token)
        return token

    created = await call("POST", "/users", json={"username": "keeper", "password": FIRST})
    assert created.status_code == 201
    user_id = created.json()["id"]
    token = await log_in("keeper", FIRST)
    assert token is not None
    auth = bearer(token)
    second_device = await log_in("keeper", FIRST)
    change = {"password": SECOND, "current_password": FIRST}
    assert (await call("PATCH", f"/users/{user_id}", json=change, headers=auth)).status_code == 200
    email = {"email": "s@ex.io"}
    assert (await call("PATCH", f"/users/{user_id}", json=email, headers=auth)).status_code == 200
    wrong_current = {"password": DUPLICATE, "current_password": DUPLICATE}
    refused = await call("PATCH", f"/users/{user_id}", json=wrong_current, headers=auth)
    assert refused.status_code == 403
    duplicate = await call("POST", "/user/add", json={"username": "keeper", "password": DUPLICATE})
    assert duplicate.status_code == 409
    for password in REJECTED:
        body = json.dumps({"username": "other", "password": password})
        rejected = await call(
            "POST", "/users", content=body, headers={"content-type": "application/json"}
        )
        assert rejected.status_code == 422
        patched = await call(
            "PATCH",
            f"/users/{user_id}",
            json={"password": password, "current_password": SECOND},
            headers=auth,
        )
        assert patched.status_code == 422
    assert (await call("POST", "/users", json=[FIRST, SECOND])).status_code == 422
    assert (await call("GET", f"/users/{user_id}", headers=auth)).status_code == 200
    assert (await call("GET", "/users/me", headers=auth)).status_code == 200
    assert (await call("GET", "/users", headers=auth)).status_code == 200
    # Logins that fail (wrong password, unknown user, a password typed as the username), the
    # throttle, a revoked token, a logout.
    await log_in("keeper", FIRST, status=401)
    await log_in("nobody", SECOND, status=401)
    await log_in(SECOND, SECOND, status=401)
    # The 403 and the login with the old password were attempts 1 and 2 of the 5 allowed.
    for _ in range(3):
        await log_in("keeper", DUPLICATE, status=401)
    await log_in("keeper", SECOND, status=429)
    assert second_device is not None
    assert (await call("GET", "/users/me", headers=bearer(second_device))).status_code == 401
    assert (await call("POST", "/auth/logout", headers=auth)).status_code == 204
    assert (await call("GET", "/users/me", headers=auth)).status_code == 401

    async with db.connect() as connection:
        hashes = list(
            (await connection.execute(text("SELECT password_hash FROM user_list"))).scalars()
        )
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)

    secrets = [FIRST, SECOND, DUPLICATE, *REJECTED, *hashes, "$argon2"]
    # A hash split into its salt and digest must not show up either.
    secrets += [part for h in hashes for part in h.split("$")[-2:]]
    # Nor a token, or the hash it is stored as.
    assert len(tokens) == 2
    secrets += tokens + [hashlib.sha256(t.encode()).hexdigest() for t in tokens]
    out, err = capfd.readouterr()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    decoded = "\n".join(text for line in lines for text in json_values(line))
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text + out + err
    assert "INSERT INTO user_list" in logged, "the statement log is off: the test proves nothing"
    assert "INSERT INTO user_session" in logged and "security event=login_ok" in logged
    assert "INSERT INTO user_list" in decoded, "the JSON log is off: the test proves less"
    assert any(line.get("logger") == "app.access" for line in lines)
    assert all(line.get("request_id") for line in lines if line.get("logger") == "app.access")
    for secret in secrets:
        assert secret not in logged, "a log line contains password or token material"
        assert secret not in decoded, "a JSON log line contains password or token material"
        for response in responses:
            if secret in tokens and response.request.url.path == "/auth/login":
                continue  # the one answer that hands a token out
            assert secret not in response.text, f"{response.request.url} echoes secret material"
            assert secret not in str(response.headers), f"{response.request.url}: in a header"


@pytest.fixture
async def account(client: AsyncClient) -> Account:
    return await register(client, "owner")


async def test_security_events_are_one_line_each_with_user_and_client(
    client: AsyncClient, db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Login ok and failed, logout, password change, delete, admin action, throttling."""
    alice = await register(client, "alice")
    root = await register_admin(client, db)
    caplog.clear()
    await client.post("/auth/login", data={"username": "alice", "password": "wrong-" + FIRST})
    await client.post("/auth/login", data={"username": "ghost", "password": "wrong-" + FIRST})
    change = {"password": SECOND, "current_password": alice.password}
    assert (
        await client.patch(f"/users/{alice.id}", json=change, headers=alice.headers)
    ).status_code == 200
    assert (await client.post("/auth/logout", headers=alice.headers)).status_code == 204
    bob = await register(client, "bob")
    assert (await client.delete(f"/users/{root.id}", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"/users/{bob.id}", headers=root.headers)).status_code == 204
    carol = await register(client, "carol")
    assert (await client.delete(f"/users/{carol.id}", headers=carol.headers)).status_code == 204
    for _ in range(6):
        await client.post("/auth/login", data={"username": "ghost", "password": "x" + FIRST})

    lines = [r.getMessage() for r in caplog.records if r.name == "app.security"]
    client_ip = "127.0.0.1"
    expected = [
        f"security event=login_failed user={alice.id} client={client_ip}",
        f"security event=login_failed user=- client={client_ip}",
        f"security event=password_changed user={alice.id} client={client_ip}",
        f"security event=logout user={alice.id} client={client_ip}",
        f"security event=login_ok user={bob.id} client={client_ip}",
        f"security event=access_denied user={root.id} actor={bob.id} client={client_ip}",
        f"security event=admin_action user={bob.id} actor={root.id} client={client_ip}"
        " action=user_deleted",
        f"security event=login_ok user={carol.id} client={client_ip}",
        f"security event=user_deleted user={carol.id} client={client_ip}",
    ]
    assert lines[: len(expected)] == expected
    # "ghost" failed once above: four more failures, then throttled.
    assert lines[len(expected) :] == [
        *[f"security event=login_failed user=- client={client_ip}"] * 4,
        *[f"security event=login_throttled user=- client={client_ip}"] * 2,
    ]
    for line in lines:
        assert FIRST not in line and SECOND not in line and "ghost" not in line


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
    client: AsyncClient, account: Account, rest: str, username: str, email: str | None
) -> None:
    """Whatever is wrong with a body (the password too short, too long, common, not text, or
    only the other fields), the 422 names the problem, never the password or a part of it."""
    password = MARKER + rest
    body: dict[str, object] = {"username": username, "password": password, "email": email}
    if username == "ok" and email is None:
        body["unexpected"] = True  # keep every body invalid: nothing is created or hashed
    content = json.dumps(body)
    headers = {"content-type": "application/json", **account.headers}
    for method, path in (
        ("POST", "/users"),
        ("POST", "/user/add"),
        ("PATCH", f"/users/{account.id}"),
    ):
        response = await client.request(method, path, content=content, headers=headers)
        assert response.status_code == 422, response.text
        assert MARKER not in response.text
        assert password not in response.text
    # A login with it: refused, without a word of it.
    login = await client.post(
        "/auth/login", data={"username": username or "x", "password": password}
    )
    assert login.status_code in (401, 422, 429), login.text
    assert MARKER not in login.text and password not in login.text
