"""Accounts for tests: register a user (or an admin) and log in, returning the auth headers."""

from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PASSWORD = "s3cret-passw0rd"


@dataclass(frozen=True)
class Account:
    """A registered user, logged in: `headers` carry its bearer token."""

    id: int
    username: str
    password: str
    token: str
    user: dict[str, Any]  # the registration's answer

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def log_in(client: AsyncClient, username: str, password: str = PASSWORD) -> str:
    """POST /auth/login with the OAuth2 form; the access token (the login must succeed)."""
    response = await client.post("/auth/login", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def register(
    client: AsyncClient, username: str, password: str = PASSWORD, **extra: Any
) -> Account:
    """Register `username` through POST /users and log it in."""
    response = await client.post(
        "/users", json={"username": username, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    token = await log_in(client, username, password)
    return Account(user["id"], username, password, token, user)


async def register_admin(
    client: AsyncClient, db: AsyncEngine, username: str = "root", password: str = PASSWORD
) -> Account:
    """Register `username`, make it an admin in the database, and log it in."""
    response = await client.post("/users", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    async with db.begin() as connection:
        await connection.execute(
            text("UPDATE user_list SET role = 'admin' WHERE id = :id"), {"id": user["id"]}
        )
    token = await log_in(client, username, password)
    return Account(user["id"], username, password, token, user)
