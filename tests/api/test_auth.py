"""Login, tokens and sessions on both backends: what a token opens, and everything that ends it."""

import asyncio
import hashlib
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.conftest import OWASP_HASH_COST, TEST_HASH_MEMORY_KIB
from tests.support.auth import PASSWORD, bearer, log_in, register, register_admin
from tests.support.serving import serve

# What the suite's settings hash with (tests/conftest.py).
TEST_PARAMETERS = f"m={TEST_HASH_MEMORY_KIB},t=1,p=1"


async def sessions_of(db: AsyncEngine, user_id: int) -> list[dict[str, Any]]:
    async with db.connect() as connection:
        rows = await connection.execute(
            text("SELECT * FROM user_session WHERE user_id = :u ORDER BY id"), {"u": user_id}
        )
        return [dict(r._mapping) for r in rows]


async def test_login_answers_an_opaque_bearer_token(
    client: AsyncClient, settings: Settings
) -> None:
    await register(client, "alice")
    response = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.session_absolute_timeout_s
    token = body["access_token"]
    # 32 random bytes, URL-safe base64: 43 characters, not a JWT (no dots, nothing decodable).
    assert len(token) >= 43 and "." not in token
    me = await client.get("/users/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


async def test_tokens_are_random_and_stored_only_as_their_sha256(
    client: AsyncClient, db: AsyncEngine
) -> None:
    account = await register(client, "bob")
    second = await log_in(client, "bob")
    assert second != account.token
    stored = await sessions_of(db, account.id)
    assert [s["token_hash"] for s in stored] == [
        hashlib.sha256(t.encode()).hexdigest() for t in (account.token, second)
    ]
    async with db.connect() as connection:
        for table in ("user_session", "user_list", "login_throttle"):
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            assert account.token not in repr(rows) and second not in repr(rows)


async def test_users_me_answers_who_is_asking_with_their_role(
    client: AsyncClient, db: AsyncEngine
) -> None:
    carol = await register(client, "carol", email="c@ex.io")
    root = await register_admin(client, db)
    me = (await client.get("/users/me", headers=carol.headers)).json()
    assert me == {"id": carol.id, "username": "carol", "email": "c@ex.io", "role": "user"}
    assert (await client.get("/users/me", headers=root.headers)).json()["role"] == "admin"


async def test_wrong_password_and_unknown_user_get_the_same_401(client: AsyncClient) -> None:
    await register(client, "dave")
    wrong = await client.post(
        "/auth/login", data={"username": "dave", "password": "not-the-passw0rd"}
    )
    unknown = await client.post(
        "/auth/login", data={"username": "nobody", "password": "not-the-passw0rd"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    assert wrong.json() == {"detail": "incorrect username or password"}
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"
    assert {k for k in wrong.headers if k != "date"} == {k for k in unknown.headers if k != "date"}


async def test_unknown_user_costs_one_verification_with_the_same_parameters(
    app: FastAPI, client: AsyncClient
) -> None:
    """The same work as a wrong password: one argon2id verification, same memory and time cost
    (the very first unknown user instead makes the dummy hash, which costs the same)."""
    await register(client, "erin")
    hasher = app.state.runtime.hasher
    calls: list[str] = []
    original = hasher._run

    async def spy(work: Any, *args: str) -> Any:
        calls.append(work.__name__)
        return await original(work, *args)

    hasher._run = spy
    for username in ("nobody", "nobody2", "erin"):
        await client.post("/auth/login", data={"username": username, "password": "wrong-passw0rd"})
    assert calls == ["hash", "verify", "verify_and_update"]
    dummy_parameters = hasher._dummy_hash.split("$")[3]
    assert dummy_parameters == TEST_PARAMETERS  # the configured cost, as a real account's


async def test_login_takes_the_oauth2_form_not_json(client: AsyncClient) -> None:
    await register(client, "frank")
    response = await client.post("/auth/login", json={"username": "frank", "password": PASSWORD})
    assert response.status_code == 422
    # What /docs' Authorize dialog sends: grant_type, an empty scope, possibly a client id.
    form = {"grant_type": "password", "username": "frank", "password": PASSWORD, "scope": ""}
    assert (await client.post("/auth/login", data=form)).status_code == 200


async def test_openapi_offers_the_password_flow_for_the_authorize_button(
    client: AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    [scheme] = schemes.values()
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"]["tokenUrl"] == "/auth/login"
    assert schema["paths"]["/users/me"]["get"]["security"]
    assert schema["paths"]["/users/{user_id}"]["patch"]["security"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic Z2luYTpwdw=="},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
async def test_no_or_bad_token_is_401_with_www_authenticate(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    account = await register(client, "gina")
    for method, path in (
        ("GET", "/users/me"),
        ("PATCH", f"/users/{account.id}"),
        ("DELETE", f"/users/{account.id}"),
        ("POST", "/auth/logout"),
    ):
        response = await client.request(method, path, json={"email": "g@ex.io"}, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert isinstance(response.json()["detail"], str)
    assert (await client.get("/users/me", headers=account.headers)).status_code == 200


async def test_a_bad_token_on_a_public_read_is_401_not_anonymous(client: AsyncClient) -> None:
    account = await register(client, "hank")
    response = await client.get(f"/users/{account.id}", headers=bearer("forged"))
    assert response.status_code == 401
    assert (await client.get(f"/users/{account.id}")).status_code == 200


async def test_logout_revokes_the_token(client: AsyncClient, db: AsyncEngine) -> None:
    account = await register(client, "ivy")
    other = await log_in(client, "ivy")
    response = await client.post("/auth/logout", headers=account.headers)
    assert response.status_code == 204
    assert (await client.get("/users/me", headers=account.headers)).status_code == 401
    assert (await client.post("/auth/logout", headers=account.headers)).status_code == 401
    # Only that session ended.
    assert (await client.get("/users/me", headers=bearer(other))).status_code == 200
    assert len(await sessions_of(db, account.id)) == 1


async def test_password_change_revokes_every_other_session(
    client: AsyncClient, db: AsyncEngine
) -> None:
    account = await register(client, "jack")
    laptop, phone = await log_in(client, "jack"), await log_in(client, "jack")
    changed = await client.patch(
        f"/users/{account.id}",
        json={"password": "brand-new-passw0rd", "current_password": PASSWORD},
        headers=account.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get("/users/me", headers=account.headers)).status_code == 200
    for token in (laptop, phone):
        assert (await client.get("/users/me", headers=bearer(token))).status_code == 401
    assert len(await sessions_of(db, account.id)) == 1
    # The old password no longer logs in; the new one does.
    old = await client.post("/auth/login", data={"username": "jack", "password": PASSWORD})
    assert old.status_code == 401
    await log_in(client, "jack", "brand-new-passw0rd")


async def test_email_change_keeps_the_other_sessions(client: AsyncClient) -> None:
    account = await register(client, "kim")
    other = await log_in(client, "kim")
    changed = await client.patch(
        f"/users/{account.id}", json={"email": "k@ex.io"}, headers=account.headers
    )
    assert changed.status_code == 200
    assert (await client.get("/users/me", headers=bearer(other))).status_code == 200


async def test_admin_setting_a_password_revokes_all_of_that_users_sessions(
    client: AsyncClient, db: AsyncEngine
) -> None:
    account = await register(client, "liz")
    root = await register_admin(client, db)
    reset = await client.patch(
        f"/users/{account.id}", json={"password": "reset-by-admin-1"}, headers=root.headers
    )
    assert reset.status_code == 200, reset.text
    assert (await client.get("/users/me", headers=account.headers)).status_code == 401
    assert await sessions_of(db, account.id) == []
    assert (await client.get("/users/me", headers=root.headers)).status_code == 200


async def test_delete_revokes_every_session_of_the_user(
    client: AsyncClient, db: AsyncEngine
) -> None:
    account = await register(client, "mia")
    other = await log_in(client, "mia")
    assert (await client.delete(f"/users/{account.id}", headers=account.headers)).status_code == 204
    for token in (account.token, other):
        assert (await client.get("/users/me", headers=bearer(token))).status_code == 401
    assert await sessions_of(db, account.id) == []


async def test_admin_deleting_a_user_revokes_their_sessions(
    client: AsyncClient, db: AsyncEngine
) -> None:
    account = await register(client, "ned")
    root = await register_admin(client, db)
    assert (await client.delete(f"/users/{account.id}", headers=root.headers)).status_code == 204
    assert (await client.get("/users/me", headers=account.headers)).status_code == 401
    assert await sessions_of(db, account.id) == []


async def test_idle_session_expires_and_use_keeps_it_alive(
    app: FastAPI, client: AsyncClient, settings: Settings, db: AsyncEngine
) -> None:
    account = await register(client, "olga")
    runtime = app.state.runtime
    start = runtime.clock()
    idle = timedelta(seconds=settings.session_idle_timeout_s)
    # Used just before the idle timeout each time: alive well past one idle period.
    for step in (1, 2, 3):
        runtime.clock = lambda step=step: start + step * (idle - timedelta(seconds=1))
        assert (await client.get("/users/me", headers=account.headers)).status_code == 200
    last_use = start + 3 * (idle - timedelta(seconds=1))
    runtime.clock = lambda: last_use + idle
    assert (await client.get("/users/me", headers=account.headers)).status_code == 401
    assert await sessions_of(db, account.id) == [], "an expired session is deleted when seen"


async def test_session_expires_at_its_absolute_lifetime_however_used(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    account = await register(client, "pam")
    runtime = app.state.runtime
    start = runtime.clock()
    idle = timedelta(seconds=settings.session_idle_timeout_s)
    absolute = timedelta(seconds=settings.session_absolute_timeout_s)
    now = start
    while now + idle / 2 < start + absolute:
        now += idle / 2
        runtime.clock = lambda now=now: now
        assert (await client.get("/users/me", headers=account.headers)).status_code == 200
    runtime.clock = lambda: start + absolute
    assert (await client.get("/users/me", headers=account.headers)).status_code == 401


async def test_login_clears_the_users_expired_sessions(
    app: FastAPI, client: AsyncClient, settings: Settings, db: AsyncEngine
) -> None:
    account = await register(client, "quinn")
    await log_in(client, "quinn")
    runtime = app.state.runtime
    later = runtime.clock() + timedelta(seconds=settings.session_absolute_timeout_s)
    runtime.clock = lambda: later
    fresh = await log_in(client, "quinn")
    stored = await sessions_of(db, account.id)
    assert [s["token_hash"] for s in stored] == [hashlib.sha256(fresh.encode()).hexdigest()]


async def test_login_upgrades_a_hash_made_with_other_parameters(
    client: AsyncClient, db: AsyncEngine
) -> None:
    old_scheme = PasswordHash((Argon2Hasher(time_cost=3, memory_cost=65536, parallelism=4),))
    async with db.begin() as connection:
        await connection.execute(
            text("INSERT INTO user_list (username, password_hash) VALUES ('oldtimer', :h)"),
            {"h": old_scheme.hash(PASSWORD)},
        )
    await log_in(client, "oldtimer")
    async with db.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT password_hash FROM user_list WHERE username = 'oldtimer'")
            )
        ).scalar_one()
    assert stored.split("$")[3] == TEST_PARAMETERS
    assert PasswordHash.recommended().verify(PASSWORD, stored)
    await log_in(client, "oldtimer")  # and the new hash logs in


async def test_a_login_flood_gets_503_with_retry_after_from_the_bounded_pool(
    settings: Settings,
) -> None:
    limits: dict[str, Any] = {"hash_threads": 1, "hash_wait_s": 0.05, "hash_queue_max": 2}
    limits |= OWASP_HASH_COST  # hashes slow enough to queue
    async with serve(settings, **limits) as client:
        # Twelve accounts at once (unknown ones verify against the dummy hash all the same).
        responses = await asyncio.gather(
            *(
                client.post("/auth/login", data={"username": f"nobody{i}", "password": "pw"})
                for i in range(12)
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert 503 in statuses and set(statuses) <= {401, 503}, statuses
    for response in responses:
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"
            assert "retry later" in response.json()["detail"]


async def test_concurrent_logins_of_different_users_all_succeed(settings: Settings) -> None:
    """Regression: each login cleared its user's expired sessions with a range DELETE whose gap
    locks (MariaDB, REPEATABLE READ) deadlocked with the other logins' session INSERTs: 503s."""
    # The database is under test, not hashing.
    async with serve(settings, hash_memory_kib=8, hash_time_cost=1) as client:
        for i in range(30):
            created = await client.post("/users", json={"username": f"c{i}", "password": PASSWORD})
            assert created.status_code == 201
        for _ in range(3):
            responses = await asyncio.gather(
                *(
                    client.post("/auth/login", data={"username": f"c{i}", "password": PASSWORD})
                    for i in range(30)
                )
            )
            assert [r.status_code for r in responses] == [200] * 30, [
                r.text for r in responses if r.status_code != 200
            ]


async def test_hashing_cost_comes_from_the_settings(settings: Settings, db: AsyncEngine) -> None:
    """OWASP's m=19 MiB, t=2, p=1 by default; the settings change it (the suite hashes at a
    test cost), and a login under new settings rehashes what the old ones made."""
    defaults = Settings.model_fields
    owasp = {
        "hash_memory_kib": defaults["hash_memory_kib"].default,
        "hash_time_cost": defaults["hash_time_cost"].default,
    }
    assert owasp == {"hash_memory_kib": 19_456, "hash_time_cost": 2}
    assert defaults["hash_parallelism"].default == 1
    async with serve(settings, hash_memory_kib=1024, hash_time_cost=1) as client:
        await register(client, "ruth")
    async with db.connect() as connection:
        query = text("SELECT password_hash FROM user_list WHERE username = 'ruth'")
        made = (await connection.execute(query)).scalar_one()
    assert made.split("$")[3] == "m=1024,t=1,p=1"
    async with serve(settings, **owasp) as client:
        await log_in(client, "ruth")
    async with db.connect() as connection:
        assert (await connection.execute(query)).scalar_one().split("$")[3] == "m=19456,t=2,p=1"
