"""POST /auth/login (the OAuth2 password form, answered with an opaque bearer token) and logout."""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app import crud, sessions
from app.deps import (
    ClientAddressDep,
    CurrentUserDep,
    HasherDep,
    SessionDep,
    StateDep,
    ThrottleDep,
)
from app.error_handlers import responses_for
from app.exceptions import (
    DatabaseUnavailable,
    HashingBusy,
    LoginFailed,
    ThrottleUnavailable,
    TooManyAttempts,
    Unauthorized,
)
from app.login_throttle import throttle_key
from app.passwords import normalize_password
from app.schemas import Token
from app.security_log import Event, log_event

router = APIRouter(prefix="/auth", tags=["auth"])

LoginForm = Annotated[OAuth2PasswordRequestForm, Depends()]


@router.post(
    "/login",
    responses=responses_for(
        LoginFailed, TooManyAttempts, HashingBusy, ThrottleUnavailable, DatabaseUnavailable
    ),
)
async def login(
    form: LoginForm,
    state: StateDep,
    session: SessionDep,
    hasher: HasherDep,
    throttle: ThrottleDep,
    client: ClientAddressDep,
) -> Token:
    """Log in with `username` and `password` (form-encoded, the OAuth2 password flow).

    A wrong password and an unknown username get the same 401 in about the same time. After
    LOGIN_MAX_FAILURES failed attempts for one account within LOGIN_FAILURE_WINDOW_S, further
    attempts get 429 with Retry-After, wherever they come from; a success resets the count.
    """
    # Read on a connection of its own, closed before the session writes: on SQLite a
    # transaction that reads, waits (for the hash) and then writes can lose its write lock.
    async with state.read_connection() as connection:
        account = await crud.read_login(connection, username=form.username)
    user_id = account.id if account is not None else None
    key = throttle_key(form.username)
    wait = await throttle.attempt(key)
    if wait is not None:
        log_event(Event.LOGIN_THROTTLED, user_id=user_id, client=client)
        raise TooManyAttempts(wait)
    password = normalize_password(form.password)
    if account is None:
        await hasher.verify_unknown_user(password)
        matches, rehashed = False, None
    else:
        matches, rehashed = await hasher.verify_and_update(password, account.password_hash)
    if account is None or not matches:
        log_event(Event.LOGIN_FAILED, user_id=user_id, client=client)
        raise LoginFailed()
    await throttle.reset(key)
    if rehashed is not None:  # made with other argon2 parameters: upgrade it now
        await crud.update_user(session, user_id=account.id, values={"password_hash": rehashed})
    token = await sessions.create_session(
        session, user_id=account.id, now=state.clock(), settings=state.settings
    )
    crud.after_commit(
        session, partial(log_event, Event.LOGIN_OK, user_id=account.id, client=client)
    )
    return Token(access_token=token, expires_in=state.settings.session_absolute_timeout_s)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses_for(Unauthorized, DatabaseUnavailable),
)
async def logout(session: SessionDep, user: CurrentUserDep, client: ClientAddressDep) -> Response:
    """End the session of the token sent: it no longer authenticates anyone."""
    await sessions.revoke(session, session_id=user.session_id)
    crud.after_commit(
        session, partial(log_event, Event.LOGOUT, user_id=user.user_id, client=client)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
