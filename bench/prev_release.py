"""The service's previous release (schema 0001: no email) for the migration-under-load scenario.

A schema change is run while the release that does not depend on it serves: `upgrade` to 0002
before deploying the code that reads `email`, `downgrade` from 0002 after rolling that code back.
So the readers during both migrations are this app: the service's own `AppState` (engine, pools,
read path), with the 0001 query. Run as `uvicorn bench.prev_release:app`.

It also registers users the way a release before revision 0005 does, without a username key:
the `backfill` scenario's trickle of creates while 0005 keys every user.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from app.config import get_settings
from app.models import User
from app.state import AppState
from app.write_conflicts import ConflictRetryRoute

# user_list as 0001 made it: the model's later columns (role, with its default, username_key)
# do not exist until 0004 and 0005 run, and an INSERT naming them would fail until then.
USERS_0001 = Table(
    "user_list",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("username", String),
    Column("password_hash", String),
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # No schema check, unlike the service: this release serves through both migrations.
    state = AppState.build(get_settings())
    app.state.runtime = state
    try:
        yield
    finally:
        await state.close()


async def get_state(request: Request) -> AppState:
    """The lifespan's `AppState` (this app's only look at `app.state`)."""
    state: AppState = request.app.state.runtime
    return state


app = FastAPI(lifespan=lifespan)
# As the service's routes: a read aborted by a schema change on Galera (1213) runs again.
app.router.route_class = ConflictRetryRoute


class NewUser(BaseModel):
    username: str
    password: str


@app.post("/user/add", status_code=201)
async def add_user(body: NewUser, state: Annotated[AppState, Depends(get_state)]) -> JSONResponse:
    password_hash = await state.hasher.hash(body.password)
    async with state.engine.begin() as connection:
        statement = insert(USERS_0001).values(username=body.username, password_hash=password_hash)
        result = await connection.execute(statement)
    return JSONResponse({"id": result.inserted_primary_key[0]}, status_code=201)


@app.get("/show/{user_id}")
async def show_user(user_id: int, state: Annotated[AppState, Depends(get_state)]) -> JSONResponse:
    async with state.read_connection() as connection:
        query = select(User.id, User.username).where(User.id == user_id)
        row = (await connection.execute(query)).first()
    if row is None:
        return JSONResponse({"detail": f"user {user_id} not found"}, status_code=404)
    return JSONResponse({"id": row.id, "username": row.username})
