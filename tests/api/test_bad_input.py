"""Malformed requests on both backends: each gets a 4xx in the JSON error shape, none a 5xx,
and none writes anything."""

import json
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.auth import register

PASSWORD = "a-Valid-passw0rd"
EXISTING = "existing"
MAX_BODY = 16_384  # the default cap, Settings.max_body_bytes
JSON = {"content-type": "application/json"}


@dataclass
class Bad:
    """One malformed request and the 4xx it must get; `{id}` is an existing user's id."""

    name: str
    method: str
    path: str
    status: int
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None  # raw `content` is sent as JSON unless set
    # Sent with the existing user's token (so PATCH and DELETE reach validation) unless False.
    authenticated: bool = True


def user(**fields: Any) -> dict[str, Any]:
    return {"username": "newbie", "password": PASSWORD, **fields}


def raw(value: Any) -> bytes:
    # json.dumps keeps lone surrogates as \ud800 escapes, which httpx's encoder would refuse.
    return json.dumps(value).encode()


CASES = [
    # Missing, extra and mistyped fields.
    Bad("empty object", "POST", "/users", 422, json={}),
    Bad("missing password", "POST", "/users", 422, json={"username": "newbie"}),
    Bad("missing username", "POST", "/user/add", 422, json={"password": PASSWORD}),
    Bad("extra field", "POST", "/users", 422, json=user(is_admin=True)),
    Bad("id in body", "POST", "/users", 422, json=user(id=1)),
    Bad("username is a number", "POST", "/users", 422, json=user(username=12345)),
    Bad("username is null", "POST", "/users", 422, json=user(username=None)),
    Bad("username is an object", "POST", "/users", 422, json=user(username={"a": 1})),
    Bad("password is a number", "POST", "/users", 422, json=user(password=12345678)),
    Bad("password is a list", "POST", "/users", 422, json=user(password=[PASSWORD])),
    Bad("email is a list", "POST", "/users", 422, json=user(email=["a@ex.io"])),
    Bad("username is NaN", "POST", "/users", 422, content=b'{"username": NaN, "password": "x"}'),
    Bad("username is 1e400", "POST", "/users", 422, content=b'{"username": 1e400}'),
    # Arrays and scalars where an object belongs.
    Bad("array body", "POST", "/users", 422, json=["newbie", PASSWORD]),
    Bad("array of the object", "POST", "/users", 422, json=[user()]),
    Bad("string body", "POST", "/users", 422, json="newbie"),
    Bad("null body", "POST", "/users", 422, content=b"null"),
    Bad("array body on patch", "PATCH", "/users/{id}", 422, json=[{"email": "a@ex.io"}]),
    # Not JSON, or not declared as JSON.
    Bad("truncated JSON", "POST", "/users", 422, content=b'{"username": "newbie", "pass'),
    Bad(
        "form encoded",
        "POST",
        "/users",
        422,
        content=b"username=newbie&password=xyzxyzxyz",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    Bad(
        "JSON sent as text/plain",
        "POST",
        "/users",
        422,
        content=raw(user()),
        headers={"content-type": "text/plain"},
    ),
    Bad("JSON without content type", "POST", "/users", 422, content=raw(user()), headers={}),
    Bad("invalid UTF-8", "POST", "/users", 400, content=b'{"username": "\xff\xfe"}'),
    Bad("empty body", "POST", "/users", 422, content=b""),
    Bad(
        "multipart",
        "POST",
        "/users",
        422,
        content=b"--x\r\n\r\n--x--",
        headers={"content-type": "multipart/form-data; boundary=x"},
    ),
    # Empty and over-long strings, by characters and by bytes.
    Bad("empty username", "POST", "/users", 422, json=user(username="")),
    Bad("11-character username", "POST", "/users", 422, json=user(username="abcdefghijk")),
    Bad("11 emoji username", "POST", "/users", 422, json=user(username="😀" * 11)),
    Bad("11 accented characters", "POST", "/users", 422, json=user(username="é" * 11)),
    Bad("1000-byte username", "POST", "/users", 422, json=user(username="x" * 1000)),
    Bad("short password", "POST", "/users", 422, json=user(password="Sh0rt!")),
    Bad("129-character password", "POST", "/users", 422, json=user(password="p" * 129)),
    Bad("129 emoji password", "POST", "/users", 422, json=user(password="🔑" * 129)),
    Bad("invalid email", "POST", "/users", 422, json=user(email="not-an-email")),
    Bad("13-character email", "POST", "/users", 422, json=user(email="abcde@exa.com")),
    Bad("empty email", "POST", "/users", 422, json=user(email="")),
    Bad("patch empty password", "PATCH", "/users/{id}", 422, json={"password": ""}),
    Bad("patch long email", "PATCH", "/users/{id}", 422, json={"email": "x" * 300 + "@ex.io"}),
    Bad("patch username", "PATCH", "/users/{id}", 422, json={"username": "renamed"}),
    # NUL bytes, control characters and lone surrogates.
    Bad("NUL in username", "POST", "/users", 422, json=user(username="ab\x00cd")),
    Bad("NUL in password", "POST", "/users", 422, json=user(password="pass\x00word-1")),
    Bad("NUL in email", "POST", "/users", 422, json=user(email="a\x00@ex.io")),
    Bad("escape char in username", "POST", "/users", 422, json=user(username="a\x1b[31m")),
    Bad("lone surrogate username", "POST", "/users", 422, content=raw(user(username="a\ud800"))),
    Bad(
        "lone surrogate password",
        "POST",
        "/users",
        422,
        content=raw(user(password="password\udfff-x")),
    ),
    Bad(
        "lone surrogate email", "PATCH", "/users/{id}", 422, content=raw({"email": "a\ud800@ex.io"})
    ),
    # Common passwords.
    Bad("the tutorial's password", "POST", "/user/add", 422, json=user(password="123456")),
    Bad("common password", "POST", "/users", 422, json=user(password="password")),
    Bad("common digits", "POST", "/users", 422, json=user(password="12345678")),
    Bad("common, other case", "POST", "/users", 422, json=user(password="PassWord1")),
    Bad("common on patch", "PATCH", "/users/{id}", 422, json={"password": "qwertyuiop"}),
    # Ids and query parameters out of range or of the wrong type.
    Bad("negative id", "GET", "/users/-1", 422),
    Bad("zero id", "GET", "/show/0", 422),
    Bad("non-numeric id", "GET", "/users/abc", 422),
    Bad("fractional id", "GET", "/show/1.5", 422),
    Bad("exponent id", "GET", "/users/1e3", 422),
    Bad("2**63 id", "GET", f"/users/{2**63}", 422),
    Bad("2**64 id", "PATCH", f"/users/{2**64}", 422, json={"email": "a@ex.io"}),
    Bad("huge id", "DELETE", "/users/99999999999999999999999", 422),
    Bad("huge id on show", "GET", "/show/99999999999999999999999", 422),
    Bad("unicode digits id", "GET", "/users/١٢", 422),
    Bad("zero page size", "GET", "/users?limit=0", 422),
    Bad("page too big", "GET", "/users?limit=101", 422),
    Bad("negative after_id", "GET", "/users?after_id=-1", 422),
    Bad("after_id beyond 64 bits", "GET", f"/users?after_id={2**64}", 422),
    Bad("non-numeric limit", "GET", "/users?limit=ten", 422),
    # Logins: the OAuth2 form, nothing else.
    Bad("login as JSON", "POST", "/auth/login", 422, json={"username": EXISTING}),
    Bad(
        "login without password",
        "POST",
        "/auth/login",
        422,
        content=b"username=existing",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    Bad(
        "login with another grant type",
        "POST",
        "/auth/login",
        422,
        content=b"grant_type=client_credentials&username=existing&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    Bad("login on GET", "GET", "/auth/login", 405),
    Bad("logout without a token", "POST", "/auth/logout", 401, authenticated=False),
    Bad("patch without a token", "PATCH", "/users/{id}", 401, json={}, authenticated=False),
    Bad("me with an id", "GET", "/users/me/1", 404),
    # Wrong methods.
    Bad("create on GET", "GET", "/user/add", 405),
    Bad("PUT a user", "PUT", "/users/{id}", 405, json=user()),
    Bad("POST to show", "POST", "/show/{id}", 405, json=user()),
    # Oversized and deeply nested bodies.
    Bad("body over the cap", "POST", "/users", 413, json=user(email="x" * (MAX_BODY + 1))),
    Bad(
        "patch over the cap",
        "PATCH",
        "/users/{id}",
        413,
        content=b'{"email": "' + b"x" * MAX_BODY + b'"}',
    ),
    Bad("deeply nested arrays", "POST", "/users", 400, content=b"[" * 5000 + b"]" * 5000),
    Bad(
        "deeply nested objects", "POST", "/users", 400, content=b'{"a":' * 2000 + b"1" + b"}" * 2000
    ),
]


async def count_and_existing(db: AsyncEngine) -> tuple[int, Any]:
    async with db.connect() as connection:
        count = (await connection.execute(text("SELECT COUNT(*) FROM user_list"))).scalar_one()
        row = (
            await connection.execute(
                text("SELECT username, password_hash, email FROM user_list WHERE username = :u"),
                {"u": EXISTING},
            )
        ).one()
    return count, tuple(row)


def test_there_are_at_least_30_cases() -> None:
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


async def test_malformed_requests_get_json_4xx_and_write_nothing(
    client: AsyncClient, db: AsyncEngine
) -> None:
    existing = await register(client, EXISTING, PASSWORD, email="e@ex.io")
    user_id = existing.id
    before = await count_and_existing(db)

    problems = []
    for case in CASES:
        headers = dict(case.headers if case.headers is not None else JSON)
        if case.authenticated:
            headers.update(existing.headers)
        response = await client.request(
            case.method,
            case.path.replace("{id}", str(user_id)),
            json=case.json,
            content=case.content,
            headers=headers,
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if (
            response.status_code != case.status
            or not isinstance(body, dict)
            or "detail" not in body
        ):
            problems.append(f"{case.name}: {response.status_code} {response.text[:200]!r}")
        elif PASSWORD in response.text or "argon2" in response.text:
            problems.append(f"{case.name}: the answer echoes secret material")
    assert problems == []
    assert await count_and_existing(db) == before


async def test_validation_errors_say_where_and_what(client: AsyncClient) -> None:
    response = await client.post("/users", json=user(username="", password="password"))
    assert response.status_code == 422
    problems = {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
    assert set(problems) == {("body", "username"), ("body", "password")}
    assert "common" in problems[("body", "password")]


@pytest.mark.parametrize("password", ["12345678", "iloveyou", "Qwertyuiop", "sunshine"])
async def test_common_password_is_422_naming_the_rule(client: AsyncClient, password: str) -> None:
    response = await client.post("/users", json=user(password=password))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert "most common passwords" in error["msg"]
    assert password not in response.text


async def test_tutorial_password_123456_gets_a_clear_422(client: AsyncClient) -> None:
    response = await client.post("/user/add", json={"username": "tutorial", "password": "123456"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert "at least 8 characters" in error["msg"]
    assert "123456" not in response.text


async def test_oversized_body_is_refused_before_it_is_read(client: AsyncClient) -> None:
    async def endless() -> Any:
        for _ in range(1000):  # 64 MiB if the server read it all
            yield b"x" * 65536

    response = await client.post("/users", content=endless(), headers=JSON)
    assert response.status_code == 413
    assert "detail" in response.json()
