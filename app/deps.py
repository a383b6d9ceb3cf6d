"""The `Annotated` dependencies routes take: the session, a read connection, the hashers."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.hashing import HashingPool
from app.state import AppState


def get_state(request: Request) -> AppState:
    """The lifespan's `AppState` (the only place that looks at `app.state`)."""
    state: AppState = request.app.state.runtime
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A request-scoped session: committed when the route succeeds, rolled back when it raises."""
    async with state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except Exception:
            await session.rollback()
            raise


async def get_read_connection(state: StateDep) -> AsyncIterator[AsyncConnection]:
    async with state.read_connection() as connection:
        yield connection


def get_hasher(state: StateDep) -> HashingPool:
    return state.hasher


# scope="function": the commit runs before the response is sent, so a 2xx means it is durable,
# and a read connection goes back to its pool before the response is written.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadConnectionDep = Annotated[AsyncConnection, Depends(get_read_connection, scope="function")]
HasherDep = Annotated[HashingPool, Depends(get_hasher)]
