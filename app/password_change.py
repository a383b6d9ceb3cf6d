"""A password change checked before it is hashed: the current password, its throttle, the
username rule (the rules that need the stored user; the rest are in app/schemas.py)."""

from fastapi.exceptions import RequestValidationError

from app import access, crud
from app.exceptions import TooManyAttempts, WrongCurrentPassword
from app.hashing import HashingPool
from app.login_throttle import ThrottleStore, throttle_key
from app.passwords import contains_username
from app.schemas import USERNAME_IN_PASSWORD, UserUpdate
from app.security_log import Event, log_event
from app.sessions import CurrentUser
from app.state import AppState


def invalid_field(field: str, message: str) -> RequestValidationError:
    """A 422 in the shape of the body validation errors, for rules that need the database."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


async def new_password_hash(
    state: AppState,
    hasher: HashingPool,
    throttle: ThrottleStore,
    *,
    viewer: CurrentUser,
    user_id: int,
    body: UserUpdate,
    client: str,
) -> str:
    """Check a password change (current password, username rule) and hash the new one."""
    assert body.password is not None
    async with state.read_connection() as connection:
        stored = await crud.read_credentials(connection, user_id=user_id)
    if access.needs_current_password(viewer, user_id):
        if body.current_password is None:
            raise invalid_field("current_password", "required to change your own password")
        # Guessing the current password through a stolen session is a login attempt too.
        key = throttle_key(stored.username)
        wait = await throttle.attempt(key)
        if wait is not None:
            log_event(Event.LOGIN_THROTTLED, user_id=user_id, client=client)
            raise TooManyAttempts(wait)
        current = body.current_password
        matches, _rehashed = await hasher.verify_and_update(current, stored.password_hash)
        if not matches:
            log_event(Event.PASSWORD_CHANGE_REFUSED, user_id=user_id, client=client)
            raise WrongCurrentPassword()
        await throttle.reset(key)
    if contains_username(body.password, stored.username):
        raise invalid_field("password", f"Value error, {USERNAME_IN_PASSWORD}")
    return await hasher.hash(body.password)
