"""The service's writes as the release that served schema 0002 made them, for 0002's downgrade.

When 0002 is rolled back, the code that still runs beside it is the release whose head was 0002:
it registers users with an email and changes emails, and knows nothing of the columns and
tables later revisions add (role, username_key, user_session). Today's routes read those, so
they cannot serve while 0002's downgrade runs below them; this app is those two writes of that
release, on the service's own runtime (`AppState`: engine, hashing pool), deadline and error
handlers, so a write held off past the deadline is the service's 503 with Retry-After.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, update

from app.config import Settings
from app.edge import HOST_EXEMPT, EdgeMiddleware
from app.error_handlers import install_error_handlers
from app.state import AppState

# user_list as revision 0002 leaves it: later columns (role, username_key) do not exist yet.
USERS = Table(
    "user_list",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("username", String),
    Column("password_hash", String),
    Column("email", String),
)


class NewUser(BaseModel):
    username: str
    password: str
    email: str | None = None


class EmailChange(BaseModel):
    email: str | None


async def _state(request: Request) -> AppState:
    state: AppState = request.app.state.runtime
    return state


StateDep = Annotated[AppState, Depends(_state)]


def create_release_0002_app(settings: Settings) -> FastAPI:
    """POST /users and PATCH /users/{id} (email only), as the release at schema 0002 wrote."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # No schema gate: this release serves while its own revision is rolled back.
        app.state.runtime = state = AppState.build(settings)
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(EdgeMiddleware, settings=settings, host_exempt=HOST_EXEMPT)

    @app.post("/users", status_code=201)
    async def create_user(body: NewUser, state: StateDep) -> dict[str, int]:
        password_hash = await state.hasher.hash(body.password)
        values = {"username": body.username, "password_hash": password_hash, "email": body.email}
        async with state.engine.begin() as connection:
            result = await connection.execute(insert(USERS).values(values))
        key = result.inserted_primary_key
        assert key is not None
        return {"id": int(key[0])}

    @app.patch("/users/{user_id}")
    async def change_email(user_id: int, body: EmailChange, state: StateDep) -> dict[str, int]:
        async with state.engine.begin() as connection:
            await connection.execute(
                update(USERS).where(USERS.c.id == user_id).values(email=body.email)
            )
        return {"id": user_id}

    return app
