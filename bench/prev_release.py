"""The service's previous release (schema 0001: no email) for the migration-under-load scenario.

A schema change is run while the release that does not depend on it serves: `upgrade` to 0002
before deploying the code that reads `email`, `downgrade` from 0002 after rolling that code back.
So the readers during both migrations are this app: the service's own engine, pool and read
path from `app.db`, with the 0001 query. Run as `uvicorn bench.prev_release:app`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.config import get_settings
from app.db import create_engine, create_sessionmaker, read_connection
from app.models import User


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_engine(get_settings())
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/show/{user_id}")
async def show_user(request: Request, user_id: int) -> JSONResponse:
    async with read_connection(request) as connection:
        query = select(User.id, User.username).where(User.id == user_id)
        row = (await connection.execute(query)).first()
    if row is None:
        return JSONResponse({"detail": f"user {user_id} not found"}, status_code=404)
    return JSONResponse({"id": row.id, "username": row.username})
