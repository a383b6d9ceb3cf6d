"""The HTTP API on both backends: every route, its errors, and what is really stored."""

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pwdlib import PasswordHash
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine
from app.exceptions import UsernameTaken, UserNotFound
from tests.support.alembic import HEAD
from tests.support.auth import PASSWORD, Account, register, register_admin


async def create(client: AsyncClient, username: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/users", json={"username": username, "password": PASSWORD, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(db: AsyncEngine, user_id: int) -> dict[str, Any]:
    async with db.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT username, password_hash, email FROM user_list WHERE id = :id"),
                {"id": user_id},
            )
        ).one()
    return dict(row._mapping)


@pytest.mark.parametrize("path", ["/user/add", "/users"])
async def test_create_user_answers_201_without_password(client: AsyncClient, path: str) -> None:
    response = await client.post(
        path, json={"username": "alice", "password": PASSWORD, "email": "alice@ex.io"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "username", "email"}
    assert body["username"] == "alice" and body["email"] == "alice@ex.io"
    assert PASSWORD not in response.text and "argon2" not in response.text


async def test_password_is_stored_as_argon2id_hash(client: AsyncClient, db: AsyncEngine) -> None:
    user = await create(client, "bob")
    row = await stored(db, user["id"])
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]
    assert PasswordHash.recommended().verify(PASSWORD, row["password_hash"])


async def test_user_add_on_get_is_405(client: AsyncClient) -> None:
    response = await client.get("/user/add")
    assert response.status_code == 405
    assert "detail" in response.json()


async def test_email_is_optional(client: AsyncClient) -> None:
    user = await create(client, "noemail")
    assert user["email"] is None


@pytest.mark.parametrize("path", ["/show/{id}", "/users/{id}"])
async def test_show_user_returns_it(client: AsyncClient, path: str) -> None:
    carol = await register(client, "carol", email="c@ex.io")
    response = await client.get(path.format(id=carol.id), headers=carol.headers)
    assert response.status_code == 200
    assert response.json() == carol.user
    # Anyone else sees the id and username only (tests/api/test_access.py has the rules).
    public = (await client.get(path.format(id=carol.id))).json()
    assert public == {"id": carol.id, "username": "carol"}


@pytest.mark.parametrize("path", ["/show/424242", "/users/424242"])
async def test_show_missing_user_is_404(client: AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "user 424242 not found"}


@pytest.mark.parametrize(
    "user_id", ["99999999999999999999999", str(2**63), "0", "-1", "abc", "1.5", "1e3"]
)
async def test_show_bad_id_is_422_not_500(client: AsyncClient, user_id: str) -> None:
    response = await client.get(f"/show/{user_id}")
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_largest_64_bit_id_is_just_missing(client: AsyncClient) -> None:
    response = await client.get(f"/show/{2**63 - 1}")
    assert response.status_code == 404


async def test_duplicate_username_is_409(client: AsyncClient) -> None:
    await create(client, "dave")
    response = await client.post("/user/add", json={"username": "dave", "password": PASSWORD})
    assert response.status_code == 409
    assert response.json() == {"detail": "username already taken"}


async def test_usernames_differing_only_in_case_are_409_and_keep_their_case(
    client: AsyncClient,
) -> None:
    upper = await create(client, "Erin")
    assert upper["username"] == "Erin"  # shown as registered; compared case-folded
    response = await client.post("/users", json={"username": "erin", "password": PASSWORD})
    assert response.status_code == 409


@pytest.mark.parametrize(
    "username",
    ["法外狂徒张小三", "😀" * 10, "abcdefghij", "a", "Zoë", "ǅ𝔘ñí©ødé"],
)
async def test_unicode_usernames_round_trip_byte_identical(
    client: AsyncClient, db: AsyncEngine, username: str
) -> None:
    user = await create(client, username)
    assert user["username"].encode() == username.encode()
    shown = (await client.get(f"/show/{user['id']}")).json()
    assert shown["username"].encode() == username.encode()
    assert (await stored(db, user["id"]))["username"].encode() == username.encode()


@pytest.mark.parametrize("username", ["abcdefghijk", "法外狂徒张小三张小三张", "😀" * 11])
async def test_eleven_character_username_is_422(client: AsyncClient, username: str) -> None:
    response = await client.post("/users", json={"username": username, "password": PASSWORD})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "username"]


@pytest.mark.parametrize("username", ["", " bob", "bob ", "a\tb", "a\x00b", "a\u200bb", "\ud800"])
async def test_invalid_username_is_422(client: AsyncClient, username: str) -> None:
    # json.dumps escapes a lone surrogate as \ud800, which httpx's own encoder would refuse.
    body = json.dumps({"username": username, "password": PASSWORD})
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_trailing_space_cannot_create_a_lookalike(client: AsyncClient) -> None:
    await create(client, "frank")
    response = await client.post("/users", json={"username": "frank ", "password": PASSWORD})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"username": "gina", "password": "Sh0rt!"},
        {"username": "gina", "password": "Sh0rt!" * 22},
        {"username": "gina", "password": PASSWORD, "email": "not-an-email"},
        {"username": "gina", "password": PASSWORD, "email": "toolong@example.com"},
        {"username": "gina"},
        {"password": PASSWORD},
        {"username": "gina", "password": PASSWORD, "admin": True},
        {"username": 12345, "password": PASSWORD},
        {"username": "gina", "password": 12345678},
        ["gina", PASSWORD],
    ],
)
async def test_invalid_body_is_422_and_never_echoes_password(
    client: AsyncClient, body: Any
) -> None:
    response = await client.post("/users", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)
    assert PASSWORD not in response.text and "Sh0rt!" not in response.text
    listed = (await client.get("/users")).json()
    assert listed["items"] == []


async def test_malformed_json_is_422(client: AsyncClient) -> None:
    response = await client.post(
        "/users",
        content=b'{"username": "x", "password":',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


async def test_password_bounds_are_inclusive(client: AsyncClient) -> None:
    # Not one character repeated: that is refused as such (test_password_rules.py).
    for name, password in (("eight", "x" * 7 + "z"), ("long", "y" * 127 + "z")):
        response = await client.post("/users", json={"username": name, "password": password})
        assert response.status_code == 201


async def test_list_users_pages_in_id_order(client: AsyncClient) -> None:
    # Listed to an anonymous caller: ids and usernames (no emails).
    created = [
        {"id": u["id"], "username": u["username"]}
        for u in [await create(client, f"user{i}") for i in range(5)]
    ]
    first = (await client.get("/users", params={"limit": 2})).json()
    assert first["items"] == created[:2]
    assert first["next_after_id"] == created[1]["id"]
    second = (await client.get("/users", params={"limit": 2, "after_id": 2})).json()
    rest = (await client.get("/users", params={"limit": 3, "after_id": created[1]["id"]})).json()
    assert rest["items"] == created[2:]
    assert rest["next_after_id"] is None  # exactly a full last page still says "no more"
    assert second["items"][0]["id"] > 2


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"after_id": -1}, {"limit": "x"}])
async def test_list_users_bounds_page_size(client: AsyncClient, params: dict[str, Any]) -> None:
    response = await client.get("/users", params=params)
    assert response.status_code == 422


async def patch(client: AsyncClient, account: Account, body: Any) -> Any:
    return await client.patch(f"/users/{account.id}", json=body, headers=account.headers)


async def test_patch_changes_and_clears_email(client: AsyncClient, db: AsyncEngine) -> None:
    hank = await register(client, "hank", email="h@ex.io")
    changed = await patch(client, hank, {"email": "h2@ex.io"})
    assert changed.status_code == 200 and changed.json()["email"] == "h2@ex.io"
    cleared = await patch(client, hank, {"email": None})
    assert cleared.json()["email"] is None
    assert (await stored(db, hank.id))["email"] is None


async def test_patch_password_rehashes_and_keeps_email(
    client: AsyncClient, db: AsyncEngine
) -> None:
    ivy = await register(client, "ivy", email="i@ex.io")
    before = (await stored(db, ivy.id))["password_hash"]
    body = {"password": "another-passphrase", "current_password": PASSWORD}
    response = await patch(client, ivy, body)
    assert response.status_code == 200
    assert response.json() == ivy.user
    after = (await stored(db, ivy.id))["password_hash"]
    assert after != before
    assert PasswordHash.recommended().verify("another-passphrase", after)


async def test_patch_with_same_values_succeeds(client: AsyncClient) -> None:
    jack = await register(client, "jack", email="j@ex.io")
    response = await patch(client, jack, {"email": "j@ex.io"})
    assert response.status_code == 200


async def test_patch_missing_user_is_404(client: AsyncClient, db: AsyncEngine) -> None:
    # Only an admin may act on another id, so only an admin can find it missing.
    root = await register_admin(client, db)
    response = await client.patch("/users/999", json={"email": "k@ex.io"}, headers=root.headers)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body", [{"username": "renamed"}, {"email": "bad"}, {"password": "short"}, [1]]
)
async def test_patch_invalid_body_is_422(client: AsyncClient, body: Any) -> None:
    kim = await register(client, "kim")
    response = await patch(client, kim, body)
    assert response.status_code == 422


async def test_delete_user_then_it_is_gone(client: AsyncClient, db: AsyncEngine) -> None:
    liz = await register(client, "liz")
    root = await register_admin(client, db)
    assert (await client.delete(f"/users/{liz.id}", headers=liz.headers)).status_code == 204
    assert (await client.get(f"/show/{liz.id}")).status_code == 404
    assert (await client.delete(f"/users/{liz.id}", headers=root.headers)).status_code == 404


async def test_concurrent_creates_all_succeed(client: AsyncClient) -> None:
    """WAL + busy timeout on SQLite: parallel writers queue, never 'database is locked'."""
    responses = await asyncio.gather(
        *(
            client.post("/users", json={"username": f"c{i}", "password": PASSWORD})
            for i in range(40)
        )
    )
    assert [r.status_code for r in responses] == [201] * 40
    listed = (await client.get("/users", params={"limit": 100})).json()["items"]
    assert sorted(u["username"] for u in listed) == sorted(f"c{i}" for i in range(40))


async def test_concurrent_patches_and_creates_do_not_lock_out(client: AsyncClient) -> None:
    users = [await register(client, f"p{i}") for i in range(5)]
    writes = [
        client.patch(f"/users/{u.id}", json={"email": f"p{i}@ex.io"}, headers=u.headers)
        for i, u in enumerate(users)
    ]
    writes += [
        client.post("/users", json={"username": f"q{i}", "password": PASSWORD}) for i in range(10)
    ]
    responses = await asyncio.gather(*writes)
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]


async def test_health_reports_revision(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "reachable",
        "revision": HEAD,
        "code_revision": HEAD,
        "schema_matches_code": True,
    }


async def test_health_is_503_when_database_unreachable(app: FastAPI, client: AsyncClient) -> None:
    await app.state.runtime.engine.dispose()
    unreachable = Settings(database_url="mysql+aiomysql://nobody@127.0.0.1:9/none")
    app.state.runtime.engine = create_engine(unreachable)
    try:
        response = await client.get("/health")
    finally:
        await app.state.runtime.engine.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_openapi_documents_routes_with_examples(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"/user/add", "/show/{user_id}", "/users", "/users/{user_id}", "/health"} <= set(
        schema["paths"]
    )
    assert schema["components"]["schemas"]["UserCreate"]["examples"]


async def test_openapi_error_examples_come_from_the_exceptions(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    show = schema["paths"]["/show/{user_id}"]["get"]["responses"]
    add = schema["paths"]["/user/add"]["post"]["responses"]
    examples_404 = show["404"]["content"]["application/json"]["examples"]
    examples_409 = add["409"]["content"]["application/json"]["examples"]
    examples_503 = add["503"]["content"]["application/json"]["examples"]
    assert examples_404["UserNotFound"]["value"] == {"detail": UserNotFound(7).detail}
    assert examples_409["UsernameTaken"]["value"] == {"detail": UsernameTaken().detail}
    assert set(examples_503) == {"HashingBusy", "DatabaseUnavailable"}
