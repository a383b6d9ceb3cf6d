"""The `Annotated` dependencies routes take: the session, a read connection, the hashers,
the login throttle, who is asking and from where."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import sessions
from app.exceptions import Unauthorized
from app.hashing import HashingPool
from app.login_throttle import ThrottleStore
from app.sessions import CurrentUser
from app.state import AppState


# Every dependency here is `async def`, even those that await nothing: FastAPI runs a plain
# `def` dependency in its thread pool, a hand-off to a worker thread and back per request.
def state_of(request: Request) -> AppState:
    """The lifespan's `AppState` (the only place that looks at `app.state`)."""
    state: AppState = request.app.state.runtime
    return state


async def get_state(request: Request) -> AppState:
    return state_of(request)


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


async def get_hasher(state: StateDep) -> HashingPool:
    return state.hasher


# scope="function": the commit runs before the response is sent, so a 2xx means it is durable,
# and a read connection goes back to its pool before the response is written.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadConnectionDep = Annotated[AsyncConnection, Depends(get_read_connection, scope="function")]
HasherDep = Annotated[HashingPool, Depends(get_hasher)]


async def get_throttle(state: StateDep) -> ThrottleStore:
    return state.throttle


async def get_client_address(request: Request) -> str:
    """The peer address as the server saw it (behind a proxy: uvicorn --proxy-headers)."""
    return request.client.host if request.client else "unknown"


ThrottleDep = Annotated[ThrottleStore, Depends(get_throttle)]
ClientAddressDep = Annotated[str, Depends(get_client_address)]

# Reads `Authorization: Bearer <token>`, and makes /docs' "Authorize" button log in through
# POST /auth/login. auto_error=False: a missing token is answered by the dependencies below,
# in the service's JSON error shape.
bearer_token = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)
BearerTokenDep = Annotated[str | None, Depends(bearer_token)]


async def _viewer(state: AppState, token: str | None) -> CurrentUser | None:
    if token is None:
        return None  # anonymous: no query at all
    user = await sessions.authenticate(state, token)
    if user is None:
        raise Unauthorized("invalid, expired or revoked token")
    return user


async def get_optional_user(request: Request, token: BearerTokenDep) -> CurrentUser | None:
    """Who is asking, or None without a token; a token that opens no live session is a 401."""
    # The state straight from the request, not as a sub-dependency: FastAPI solves a cached
    # dependency again for every dependant that names it.
    return await _viewer(state_of(request), token)


@dataclass(frozen=True)
class Reader:
    """What the hot read routes need, as one dependency (FastAPI's solving costs CPU per
    dependency and request): the app's state, and who is asking (None: anonymous)."""

    state: AppState
    viewer: CurrentUser | None


async def get_reader(request: Request, token: BearerTokenDep) -> Reader:
    state = state_of(request)
    return Reader(state, await _viewer(state, token))


ReaderDep = Annotated[Reader, Depends(get_reader)]
OptionalUserDep = Annotated[CurrentUser | None, Depends(get_optional_user)]


async def get_current_user(user: OptionalUserDep) -> CurrentUser:
    """Who is asking; 401 without a valid token."""
    if user is None:
        raise Unauthorized()
    return user


CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]
