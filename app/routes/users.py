"""HTTP routes for users: the tutorial's `/user/add` and `/show/{id}`, and the `/users` resource."""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BeforeValidator

from app import crud
from app.deps import HasherDep, ReadConnectionDep, SessionDep
from app.error_handlers import responses_for
from app.exceptions import DatabaseUnavailable, HashingBusy, UsernameTaken, UserNotFound
from app.hashing import HashingPool
from app.schemas import PAGE_SIZE_MAX, UserCreate, UserOut, UserPage, UserUpdate

# Ids are 64-bit on every backend: a larger number is a client error, not an overflow (500).
# And written one way only: int() would also take `1_0` (10), `+1`, `01` and ` 1`.
CANONICAL_ID = re.compile(r"[1-9][0-9]{0,18}")


def _canonical_id(value: object) -> object:
    if isinstance(value, str) and CANONICAL_ID.fullmatch(value) is None:
        raise ValueError("must be a positive integer in plain decimal digits, without a leading 0")
    return value


UserId = Annotated[
    int,
    BeforeValidator(_canonical_id),
    Path(ge=1, le=2**63 - 1, description="The user's id.", examples=[1]),
]

router = APIRouter()

CREATE_ERRORS = responses_for(UsernameTaken, HashingBusy, DatabaseUnavailable)
READ_ERRORS = responses_for(UserNotFound, DatabaseUnavailable)
UPDATE_ERRORS = responses_for(UserNotFound, HashingBusy, DatabaseUnavailable)


async def _create(session: SessionDep, hasher: HashingPool, body: UserCreate) -> UserOut:
    password_hash = await hasher.hash(body.password)
    user = await crud.create_user(
        session, username=body.username, password_hash=password_hash, email=body.email
    )
    return UserOut.model_validate(user)


async def _read_user(connection: ReadConnectionDep, user_id: int) -> UserOut:
    # The hot path: a Core read on a bare connection (see AppState.read_connection).
    row = await crud.read_public_user(connection, user_id=user_id)
    return UserOut(id=row.id, username=row.username, email=row.email)


@router.post(
    "/user/add", status_code=status.HTTP_201_CREATED, tags=["tutorial"], responses=CREATE_ERRORS
)
async def add_user(session: SessionDep, hasher: HasherDep, body: UserCreate) -> UserOut:
    """The tutorial's route: create a user (POST only; creating on GET was unsafe)."""
    return await _create(session, hasher, body)


@router.get("/show/{user_id}", tags=["tutorial"], responses=READ_ERRORS)
async def show_user(connection: ReadConnectionDep, user_id: UserId) -> UserOut:
    """The tutorial's route: show one user, without any password material."""
    return await _read_user(connection, user_id)


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["users"], responses=CREATE_ERRORS)
async def create_user(session: SessionDep, hasher: HasherDep, body: UserCreate) -> UserOut:
    return await _create(session, hasher, body)


@router.get("/users", tags=["users"], responses=responses_for(DatabaseUnavailable))
async def list_users(
    session: SessionDep,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Return ids above this.")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX, description="Page size.")] = 50,
) -> UserPage:
    # One extra row tells whether another page exists, so the last page says so itself.
    users = await crud.list_users(session, after_id=after_id, limit=limit + 1)
    page = users[:limit]
    next_after_id = page[-1].id if len(users) > limit else None
    return UserPage(items=[UserOut.model_validate(u) for u in page], next_after_id=next_after_id)


@router.get("/users/{user_id}", tags=["users"], responses=READ_ERRORS)
async def get_user(connection: ReadConnectionDep, user_id: UserId) -> UserOut:
    return await _read_user(connection, user_id)


@router.patch("/users/{user_id}", tags=["users"], responses=UPDATE_ERRORS)
async def update_user(
    session: SessionDep, hasher: HasherDep, user_id: UserId, body: UserUpdate
) -> UserOut:
    """Change the email (null clears it) and/or the password; omitted fields stay as they are."""
    values: dict[str, Any] = {}
    if "email" in body.model_fields_set:
        values["email"] = body.email
    if body.password is not None:
        values["password_hash"] = await hasher.hash(body.password)
    user = await crud.update_user(session, user_id=user_id, values=values)
    return UserOut.model_validate(user)


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["users"],
    responses=responses_for(UserNotFound, DatabaseUnavailable),
)
async def delete_user(session: SessionDep, user_id: UserId) -> Response:
    await crud.delete_user(session, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
