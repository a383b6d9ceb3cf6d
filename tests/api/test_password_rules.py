"""Password rules on both backends: NFKC before hashing and verifying, no username inside, not
one character repeated; each refusal a clear 422 that never echoes the password."""

import unicodedata

import pytest
from httpx import AsyncClient
from pwdlib import PasswordHash
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.auth import PASSWORD, log_in, register, register_admin

# The same password typed two ways: precomposed "é" and full-width digits, or "e" + combining
# accent and ASCII digits. NFKC makes both "café-latte-42".
COMPOSED = "café-latte-\uff14\uff12"  # FULLWIDTH DIGIT FOUR, TWO
DECOMPOSED = unicodedata.normalize("NFD", "café-latte-42")


async def test_passwords_are_nfkc_normalised_before_hashing_and_verifying(
    client: AsyncClient, db: AsyncEngine
) -> None:
    assert COMPOSED != DECOMPOSED
    await register(client, "barista", COMPOSED)
    await log_in(client, "barista", DECOMPOSED)
    await log_in(client, "barista", "café-latte-42")
    async with db.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT password_hash FROM user_list WHERE username = 'barista'")
            )
        ).scalar_one()
    assert PasswordHash.recommended().verify(unicodedata.normalize("NFKC", COMPOSED), stored)


async def test_a_changed_password_is_normalised_too(client: AsyncClient) -> None:
    account = await register(client, "roaster")
    response = await client.patch(
        f"/users/{account.id}",
        json={"password": DECOMPOSED, "current_password": PASSWORD},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    await log_in(client, "roaster", COMPOSED)
    # And the current password is compared in its normalised form as well.
    again = await client.patch(
        f"/users/{account.id}",
        json={"password": "third-passw0rd", "current_password": COMPOSED},
        headers=account.headers,
    )
    assert again.status_code == 200, again.text


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "alice2024!x"),
        ("alice", "my-ALICE-pass"),
        ("Bob", "xx-bob-xx-yy"),
        ("\uff4a\uff4f\uff45", "hello-joe-99"),  # full-width "joe"
    ],
)
async def test_a_password_containing_the_username_is_422(
    client: AsyncClient, username: str, password: str
) -> None:
    response = await client.post("/users", json={"username": username, "password": password})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert "must not contain the username" in error["msg"]
    assert password not in response.text


async def test_short_usernames_do_not_ban_their_letters(client: AsyncClient) -> None:
    # "al" is inside too many passwords to mean anything; the rule starts at 3 characters.
    response = await client.post("/users", json={"username": "al", "password": "royal-blue-42"})
    assert response.status_code == 201


async def test_a_new_password_containing_the_username_is_422_on_patch(
    client: AsyncClient, db: AsyncEngine
) -> None:
    account = await register(client, "gwen")
    root = await register_admin(client, db)
    for headers, body in (
        (account.headers, {"password": "GWEN-forever-1", "current_password": PASSWORD}),
        (root.headers, {"password": "gwen-reset-12"}),
    ):
        response = await client.patch(f"/users/{account.id}", json=body, headers=headers)
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "password"]
        assert "must not contain the username" in error["msg"]
        assert "forever" not in response.text and "reset-12" not in response.text
    await log_in(client, "gwen")  # unchanged


@pytest.mark.parametrize("password", ["aaaaaaaa", "%%%%%%%%%%%%", "ééééééééé", "😀" * 8])
async def test_one_repeated_character_is_422(client: AsyncClient, password: str) -> None:
    response = await client.post("/users", json={"username": "rita", "password": password})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert "single character repeated" in error["msg"]
    assert password not in response.text
