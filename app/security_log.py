"""Security events, one log line each on the `app.security` logger: what, which user, from where.

Never a password, token, token hash or password hash; not the username tried at a failed login
either (people type their password into the username field). An unknown account is `user=-`.
"""

import logging
from enum import StrEnum

logger = logging.getLogger("app.security")


class Event(StrEnum):
    LOGIN_OK = "login_ok"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    LOGOUT = "logout"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event name)
    PASSWORD_CHANGE_REFUSED = "password_change_refused"  # noqa: S105
    EMAIL_CHANGED = "email_changed"
    USER_DELETED = "user_deleted"
    ADMIN_ACTION = "admin_action"
    ADMIN_CREATED = "admin_created"
    ACCESS_DENIED = "access_denied"


def log_event(
    event: Event,
    *,
    user_id: int | None,
    client: str,
    actor_id: int | None = None,
    detail: str = "",
) -> None:
    """One line: `security event=... user=... [actor=...] client=... [detail]`.

    `user_id` is the account concerned, `actor_id` who acted on it when that is someone else
    (an admin). `detail` must be a fixed phrase chosen by the caller, never client input.
    """
    actor = f" actor={actor_id}" if actor_id is not None and actor_id != user_id else ""
    user = "-" if user_id is None else str(user_id)
    level = logging.WARNING if event in _WARNINGS else logging.INFO
    logger.log(
        level,
        "security event=%s user=%s%s client=%s%s",
        event.value,
        user,
        actor,
        client,
        f" {detail}" if detail else "",
    )


def log_account_change(
    event: Event, *, user_id: int, actor_id: int, by_admin: bool, client: str
) -> None:
    """A change to an account: its own event when the owner made it; when an admin changed
    someone else's account, one `admin_action` line naming the admin and the action."""
    if by_admin and actor_id != user_id:
        log_event(
            Event.ADMIN_ACTION,
            user_id=user_id,
            actor_id=actor_id,
            client=client,
            detail=f"action={event.value}",
        )
    else:
        log_event(event, user_id=user_id, client=client)


_WARNINGS = frozenset(
    {Event.LOGIN_FAILED, Event.LOGIN_THROTTLED, Event.PASSWORD_CHANGE_REFUSED, Event.ACCESS_DENIED}
)
