"""Who may do what, on both backends: the rules of app/access.py, route by route."""

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.auth import PASSWORD, Account, log_in, register, register_admin


async def stored(db: AsyncEngine, user_id: int) -> Any:
    async with db.connect() as connection:
        query = text("SELECT username, password_hash, email FROM user_list WHERE id = :id")
        return (await connection.execute(query, {"id": user_id})).one_or_none()


@pytest.fixture
async def alice(client: AsyncClient) -> Account:
    return await register(client, "alice", email="al@ex.io")


@pytest.fixture
async def eve(client: AsyncClient) -> Account:
    return await register(client, "eve", email="eve@ev.il")


@pytest.fixture
async def root(client: AsyncClient, db: AsyncEngine) -> Account:
    return await register_admin(client, db)


@pytest.mark.parametrize("path", ["/user/add", "/users"])
async def test_registration_stays_open(client: AsyncClient, path: str) -> None:
    response = await client.post(path, json={"username": "newbie", "password": PASSWORD})
    assert response.status_code == 201


async def test_patch_of_someone_else_is_403_and_changes_nothing(
    client: AsyncClient, db: AsyncEngine, alice: Account, eve: Account
) -> None:
    """The issue's first finding: eve taking over alice's account."""
    before = await stored(db, alice.id)
    for body in (
        {"password": "pwned-by-eve-1", "email": "eve@ev.il"},
        {"email": "eve@ev.il"},
        {"password": "pwned-by-eve-1", "current_password": PASSWORD},
    ):
        response = await client.patch(f"/users/{alice.id}", json=body, headers=eve.headers)
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": "only the user themself or an admin may do this"}
    assert await stored(db, alice.id) == before
    await log_in(client, "alice")  # her password still works


async def test_delete_of_someone_else_is_403_and_deletes_nothing(
    client: AsyncClient, db: AsyncEngine, alice: Account, eve: Account
) -> None:
    response = await client.delete(f"/users/{alice.id}", headers=eve.headers)
    assert response.status_code == 403
    assert await stored(db, alice.id) is not None
    assert (await client.get("/users/me", headers=alice.headers)).status_code == 200


async def test_without_a_token_patch_and_delete_are_401_and_change_nothing(
    client: AsyncClient, db: AsyncEngine, alice: Account
) -> None:
    before = await stored(db, alice.id)
    assert (await client.patch(f"/users/{alice.id}", json={"email": "x@ex.io"})).status_code == 401
    assert (await client.delete(f"/users/{alice.id}")).status_code == 401
    assert await stored(db, alice.id) == before


async def test_the_owner_may_patch_and_delete(
    client: AsyncClient, db: AsyncEngine, alice: Account
) -> None:
    patched = await client.patch(
        f"/users/{alice.id}", json={"email": "new@ex.io"}, headers=alice.headers
    )
    assert patched.status_code == 200
    assert patched.json() == {"id": alice.id, "username": "alice", "email": "new@ex.io"}
    assert (await client.delete(f"/users/{alice.id}", headers=alice.headers)).status_code == 204
    assert await stored(db, alice.id) is None


async def test_an_admin_may_patch_and_delete_anyone(
    client: AsyncClient, db: AsyncEngine, alice: Account, root: Account
) -> None:
    patched = await client.patch(
        f"/users/{alice.id}",
        json={"email": "fixed@ex.io", "password": "set-by-admin-1"},
        headers=root.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["email"] == "fixed@ex.io"
    await log_in(client, "alice", "set-by-admin-1")
    assert (await client.delete(f"/users/{alice.id}", headers=root.headers)).status_code == 204
    assert await stored(db, alice.id) is None


async def test_an_owner_changing_the_password_must_send_the_current_one(
    client: AsyncClient, db: AsyncEngine, alice: Account
) -> None:
    before = await stored(db, alice.id)
    url = f"/users/{alice.id}"
    missing = await client.patch(url, json={"password": "next-passw0rd"}, headers=alice.headers)
    assert missing.status_code == 422
    [error] = missing.json()["detail"]
    assert error["loc"] == ["body", "current_password"]
    wrong = await client.patch(
        url,
        json={"password": "next-passw0rd", "current_password": "not-the-passw0rd"},
        headers=alice.headers,
    )
    assert wrong.status_code == 403
    assert wrong.json() == {"detail": "current_password is incorrect"}
    assert await stored(db, alice.id) == before
    right = await client.patch(
        url,
        json={"password": "next-passw0rd", "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert right.status_code == 200


async def test_an_admin_changing_their_own_password_sends_the_current_one_too(
    client: AsyncClient, root: Account
) -> None:
    response = await client.patch(
        f"/users/{root.id}", json={"password": "next-passw0rd"}, headers=root.headers
    )
    assert response.status_code == 422


@pytest.mark.parametrize("path", ["/show/{id}", "/users/{id}"])
async def test_email_only_to_the_owner_or_an_admin(
    client: AsyncClient, alice: Account, eve: Account, root: Account, path: str
) -> None:
    url = path.format(id=alice.id)
    full = {"id": alice.id, "username": "alice", "email": "al@ex.io"}
    public = {"id": alice.id, "username": "alice"}
    assert (await client.get(url)).json() == public
    assert (await client.get(url, headers=eve.headers)).json() == public
    assert (await client.get(url, headers=alice.headers)).json() == full
    assert (await client.get(url, headers=root.headers)).json() == full


async def test_a_missing_email_is_null_to_its_owner(client: AsyncClient) -> None:
    bob = await register(client, "bob")
    shown = (await client.get(f"/users/{bob.id}", headers=bob.headers)).json()
    assert shown == {"id": bob.id, "username": "bob", "email": None}


async def test_listing_shows_emails_only_to_their_owner_or_an_admin(
    client: AsyncClient, alice: Account, eve: Account, root: Account
) -> None:
    """The issue's third finding: paging through every user's email with no credentials."""

    async def listed(headers: dict[str, str]) -> dict[int, dict[str, Any]]:
        items = (await client.get("/users?limit=100", headers=headers)).json()["items"]
        return {item["id"]: item for item in items}

    anonymous = await listed({})
    assert all(set(item) == {"id", "username"} for item in anonymous.values())
    as_eve = await listed(eve.headers)
    assert as_eve[eve.id]["email"] == "eve@ev.il"
    assert "email" not in as_eve[alice.id] and "email" not in as_eve[root.id]
    as_root = await listed(root.headers)
    assert as_root[alice.id]["email"] == "al@ex.io" and as_root[eve.id]["email"] == "eve@ev.il"


async def test_a_deleted_users_token_opens_nothing(
    client: AsyncClient, alice: Account, eve: Account
) -> None:
    assert (await client.delete(f"/users/{eve.id}", headers=eve.headers)).status_code == 204
    response = await client.patch(
        f"/users/{alice.id}", json={"email": "x@ex.io"}, headers=eve.headers
    )
    assert response.status_code == 401
