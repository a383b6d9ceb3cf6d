"""The floors under the service's creates: two apps that do only what a create must.

Both hash the password in the service's own hashing pool (the same `HashingPool.from_settings`,
CPU slots included) and store the row with one autocommit INSERT on a plain aiomysql pool: no
SQLAlchemy, no validation beyond the body's shape, no middleware, no second round trip for a
COMMIT. `bare_app` is raw ASGI; `fastapi_app` is one FastAPI route taking a pydantic body, the
least the fixed stack allows. What share of the hashing ceiling each reaches bounds what any
create path above it can reach on this machine (`python -m bench.creates_floor`). Neither is a
service: they check nothing, and answer GET with 200, which is all the harness asks of them.
"""

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import aiomysql
from fastapi import FastAPI, Response
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from app.config import get_settings
from app.hashing import HashingPool
from app.usernames import username_key

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

INSERT = (
    "INSERT INTO user_list (username, username_key, password_hash, email, role) "
    "VALUES (%s, %s, %s, NULL, 'user')"
)
POOL_SIZE = 20  # as the service's bench pool (bench.common.OUR_POOL)


class Creator:
    """The hashing pool and the autocommit connection pool, and the one thing done with them."""

    def __init__(self) -> None:
        self.hasher: HashingPool | None = None
        self.pool: aiomysql.Pool | None = None

    async def start(self) -> None:
        url = make_url(os.environ["DATABASE_URL"])
        self.hasher = HashingPool.from_settings(get_settings())
        self.pool = await aiomysql.create_pool(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            db=url.database,
            minsize=POOL_SIZE,
            maxsize=POOL_SIZE,
            autocommit=True,
        )

    async def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()
            await self.pool.wait_closed()
        if self.hasher is not None:
            self.hasher.close()

    async def create(self, username: str, password: str) -> int:
        """The new user's id: one hash, one INSERT committed by the server as it runs."""
        assert self.hasher is not None and self.pool is not None, "started first"
        password_hash = await self.hasher.hash(password)
        async with self.pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(INSERT, (username, username_key(username), password_hash))
            return int(cursor.lastrowid)


class BareApp:
    """POST: create from the JSON body (201 with the id); GET: 200."""

    def __init__(self) -> None:
        self.creator = Creator()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.creator.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.creator.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            user = json.loads(body)
            new_id = await self.creator.create(user["username"], user["password"])
            await _answer(send, 201, b'{"id":%d}' % new_id)
        else:
            await _answer(send, 200, b"{}")


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class NewUser(BaseModel):
    username: str
    password: str


def fastapi_floor() -> FastAPI:
    creator = Creator()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await creator.start()
        yield
        await creator.stop()

    floor = FastAPI(lifespan=lifespan, openapi_url=None)

    @floor.get("/show/{user_id}")
    async def probe(user_id: int) -> Response:
        return Response(b"{}", media_type="application/json")

    @floor.post("/user/add", status_code=201)
    async def create(body: NewUser) -> Response:
        new_id = await creator.create(body.username, body.password)
        return Response(b'{"id":%d}' % new_id, status_code=201, media_type="application/json")

    return floor


bare_app = BareApp()
fastapi_app = fastapi_floor()
