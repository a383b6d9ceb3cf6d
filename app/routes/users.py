"""HTTP routes for users: the tutorial's `/user/add` and `/show/{id}`, and the `/users` resource.

Registration is open; reading shows everyone's id and username but an email only to its owner
and admins; changing and deleting take the owner's or an admin's token (app/access.py).
"""

import re
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BeforeValidator

from app import access, crud, sessions
from app.deps import (
    ClientAddressDep,
    CurrentUserDep,
    HasherDep,
    OptionalUserDep,
    ReaderDep,
    SessionDep,
    StateDep,
    ThrottleDep,
)
from app.error_handlers import COMMON_RESPONSES, responses_for
from app.exceptions import (
    DatabaseUnavailable,
    Forbidden,
    HashingBusy,
    ThrottleUnavailable,
    TooManyAttempts,
    Unauthorized,
    UsernameTaken,
    UserNotFound,
    WrongCurrentPassword,
)
from app.hashing import HashingPool
from app.password_change import new_password_hash
from app.schemas import (
    PAGE_SIZE_MAX,
    Me,
    UserCreate,
    UserOut,
    UserPage,
    UserUpdate,
)
from app.security_log import Event, log_account_change, log_event
from app.sessions import CurrentUser
from app.write_conflicts import ConflictRetryRoute

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

# Every write here is only the request's transaction (log lines wait for its commit), so a write
# conflict runs the route again (app/write_conflicts.py).
# The app's common error answers are declared here, not left to the app: main.py adds these
# routes to the app's own list rather than including the router (see `add_routes_flat`).
router = APIRouter(route_class=ConflictRetryRoute, responses=COMMON_RESPONSES)

CREATE_ERRORS = responses_for(UsernameTaken, HashingBusy, DatabaseUnavailable)
READ_ERRORS = responses_for(Unauthorized, UserNotFound, DatabaseUnavailable)
# The tutorial's paths and their REST names serve the same endpoints (`name` keeps each path
# its own OpenAPI operation); these are the options both share.
REGISTER_ROUTE: dict[str, Any] = {
    "status_code": status.HTTP_201_CREATED,
    "responses": CREATE_ERRORS,
}
READ_ROUTE: dict[str, Any] = {
    "responses": READ_ERRORS,
    "response_model": UserOut,
    "response_model_exclude_unset": True,
}
UPDATE_ERRORS = responses_for(
    Unauthorized,
    Forbidden,
    WrongCurrentPassword,
    UserNotFound,
    TooManyAttempts,
    HashingBusy,
    ThrottleUnavailable,
    DatabaseUnavailable,
)
DELETE_ERRORS = responses_for(Unauthorized, Forbidden, UserNotFound, DatabaseUnavailable)


_USER_JSON = UserOut.__pydantic_serializer__


def _shown_to(
    viewer: CurrentUser | None, user_id: int, username: str, email: str | None
) -> UserOut:
    """The user as `viewer` may see them: the email only to the owner and admins.

    An email left out is unset, not None: the read routes drop unset fields, so a hidden email
    is absent from the answer while a missing one is null.
    """
    if access.may_see_email(viewer, user_id):
        return UserOut(id=user_id, username=username, email=email)
    return UserOut(id=user_id, username=username)


# The hot reads first: routes are matched in the order they are declared.
# Before /users/{user_id}, which would take "me" for an id.
@router.get("/users/me", tags=["users"], responses=responses_for(Unauthorized, DatabaseUnavailable))
async def read_me(viewer: CurrentUserDep) -> Me:
    """The user the token belongs to, with their role."""
    return Me(id=viewer.user_id, username=viewer.username, email=viewer.email, role=viewer.role)


@router.get("/show/{user_id}", name="show_user", tags=["tutorial"], **READ_ROUTE)
@router.get("/users/{user_id}", name="get_user", tags=["users"], **READ_ROUTE)
async def read_user(reader: ReaderDep, user_id: UserId) -> Response:
    """One user; the email only to that user and to admins."""
    # The hot path: one primary-key read on a pooled connection checked out for it alone
    # (AppState.read_source, crud.read_public_user), back in its pool before the answer.
    async with reader.state.read_source() as source:
        found_id, username, email = await crud.read_public_user(source, user_id=user_id)
    # Serialised here, as FastAPI would from `response_model` (which documents it), without
    # validating again the model just built: a tenth of the route's own CPU.
    user = _shown_to(reader.viewer, found_id, username, email)
    return Response(_USER_JSON.to_json(user, exclude_unset=True), media_type="application/json")


async def _create(session: SessionDep, hasher: HashingPool, body: UserCreate) -> UserOut:
    password_hash = await hasher.hash(body.password)
    user = await crud.create_user(
        session, username=body.username, password_hash=password_hash, email=body.email
    )
    return UserOut.model_validate(user)


@router.post("/user/add", name="add_user", tags=["tutorial"], **REGISTER_ROUTE)
@router.post("/users", name="create_user", tags=["users"], **REGISTER_ROUTE)
async def register(session: SessionDep, hasher: HasherDep, body: UserCreate) -> UserOut:
    """Register a user. Open to anyone."""
    return await _create(session, hasher, body)


@router.get(
    "/users",
    tags=["users"],
    responses=responses_for(Unauthorized, DatabaseUnavailable),
    response_model_exclude_unset=True,
)
async def list_users(
    session: SessionDep,
    viewer: OptionalUserDep,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Return ids above this.")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX, description="Page size.")] = 50,
) -> UserPage:
    """A page of users in id order; emails only of the caller's own account (all, for admins)."""
    # One extra row tells whether another page exists, so the last page says so itself.
    users = await crud.list_users(session, after_id=after_id, limit=limit + 1)
    page = users[:limit]
    next_after_id = page[-1].id if len(users) > limit else None
    return UserPage(
        items=[_shown_to(viewer, u.id, u.username, u.email) for u in page],
        next_after_id=next_after_id,
    )


@router.patch("/users/{user_id}", tags=["users"], responses=UPDATE_ERRORS)
async def update_user(
    state: StateDep,
    session: SessionDep,
    hasher: HasherDep,
    throttle: ThrottleDep,
    viewer: CurrentUserDep,
    client: ClientAddressDep,
    user_id: UserId,
    body: UserUpdate,
) -> UserOut:
    """Change the email (null clears it) and/or the password; omitted fields stay as they are.

    The user themself or an admin. Changing one's own password takes `current_password`, and
    a new password ends every other session of that user (all of them, when an admin sets it).
    """
    _authorize(viewer, user_id, client)
    values: dict[str, Any] = {}
    if "email" in body.model_fields_set:
        values["email"] = body.email
    if body.password is not None:
        values["password_hash"] = await new_password_hash(
            state, hasher, throttle, viewer=viewer, user_id=user_id, body=body, client=client
        )
    user = await crud.update_user(session, user_id=user_id, values=values)
    event: Event | None = None
    if "password_hash" in values:
        keep = viewer.session_id if viewer.user_id == user_id else None
        await sessions.revoke_all(session, user_id=user_id, except_session_id=keep)
        event = Event.PASSWORD_CHANGED
    elif "email" in values:
        event = Event.EMAIL_CHANGED  # logged only as an admin's action (owners' are routine)
    by_admin = access.acts_as_admin(viewer, user_id)
    if event is Event.PASSWORD_CHANGED or (event is not None and by_admin):
        crud.after_commit(
            session,
            partial(
                log_account_change,
                event,
                user_id=user_id,
                actor_id=viewer.user_id,
                by_admin=by_admin,
                client=client,
            ),
        )
    return UserOut.model_validate(user)


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["users"],
    responses=DELETE_ERRORS,
)
async def delete_user(
    session: SessionDep, viewer: CurrentUserDep, client: ClientAddressDep, user_id: UserId
) -> Response:
    """Delete a user and end every session of theirs. The user themself or an admin."""
    _authorize(viewer, user_id, client)
    await crud.delete_user(session, user_id=user_id)
    crud.after_commit(
        session,
        partial(
            log_account_change,
            Event.USER_DELETED,
            user_id=user_id,
            actor_id=viewer.user_id,
            by_admin=access.acts_as_admin(viewer, user_id),
            client=client,
        ),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _authorize(viewer: CurrentUser, user_id: int, client: str) -> None:
    try:
        access.require_owner_or_admin(viewer, user_id)
    except Forbidden:
        log_event(Event.ACCESS_DENIED, user_id=user_id, actor_id=viewer.user_id, client=client)
        raise
