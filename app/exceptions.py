"""Domain errors: what went wrong, which HTTP status it is, and how OpenAPI shows it.

Raised below the HTTP layer (crud, hashing, dependencies); `app.error_handlers` turns each into
the one JSON shape `{"detail": ...}`, and `responses_for` documents the routes that raise them.
"""

from http import HTTPStatus
from typing import ClassVar

RETRY_AFTER_S = 1


class DomainError(Exception):
    """An error the client caused or can act on; `status_code` picks the HTTP answer."""

    status_code: ClassVar[int] = HTTPStatus.BAD_REQUEST
    # What the OpenAPI page says this answer means, and the client's message when fixed.
    description: ClassVar[str] = "Bad request"
    message: ClassVar[str] = "bad request"
    # Seconds the client should wait before retrying (Retry-After), if the answer says so.
    retry_after_s: int | None = None
    # The scheme a 401 challenges the client to use (WWW-Authenticate).
    challenge: ClassVar[str | None] = None

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.message
        super().__init__(self.detail)

    @property
    def headers(self) -> dict[str, str] | None:
        headers = {}
        if self.retry_after_s is not None:
            headers["Retry-After"] = str(self.retry_after_s)
        if self.challenge is not None:
            headers["WWW-Authenticate"] = self.challenge
        return headers or None

    @classmethod
    def example(cls) -> "DomainError":
        """An instance as a client would see it, for the OpenAPI examples."""
        return cls()


class Unavailable(DomainError):
    """A 503: a dependency (the database, the hashers, time) failed us; worth a retry."""

    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    description = "Temporarily unavailable: see Retry-After"
    message = "temporarily unavailable, retry later"
    retry_after_s = RETRY_AFTER_S


class UserNotFound(DomainError):
    status_code = HTTPStatus.NOT_FOUND
    description = "No such user"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} not found")

    @classmethod
    def example(cls) -> "UserNotFound":
        return cls(7)


class UsernameTaken(DomainError):
    status_code = HTTPStatus.CONFLICT
    description = "Username already taken"
    message = "username already taken"


class HashingBusy(Unavailable):
    """Every password hasher is busy and the wait for one ran out: a burst, worth a retry."""

    description = "Every password hasher is busy: see Retry-After"
    message = "too many registrations or logins at once, retry later"


class ThrottleUnavailable(Unavailable):
    """The login throttle's store (Redis) did not answer: logins wait rather than go unchecked."""

    description = "Login throttle store unavailable: see Retry-After"
    message = "login temporarily unavailable, retry later"


class Unauthorized(DomainError):
    """No credentials, or credentials that are not (or no longer) valid."""

    status_code = HTTPStatus.UNAUTHORIZED
    description = "Not authenticated: no token, or an invalid, expired or revoked one"
    message = "not authenticated"
    challenge = "Bearer"


class LoginFailed(Unauthorized):
    """A wrong password and an unknown username get this same answer."""

    description = "Incorrect username or password"
    message = "incorrect username or password"


class Forbidden(DomainError):
    status_code = HTTPStatus.FORBIDDEN
    description = "Authenticated, but not allowed: only the user themself or an admin"
    message = "only the user themself or an admin may do this"


class WrongCurrentPassword(Forbidden):
    description = "current_password does not match"
    message = "current_password is incorrect"


class TooManyAttempts(DomainError):
    """Too many failed logins for one account: it waits out the window, whoever is asking."""

    status_code = HTTPStatus.TOO_MANY_REQUESTS
    description = "Too many failed logins for this account: see Retry-After"
    message = "too many failed logins for this account, retry later"

    def __init__(self, retry_after_s: int = 60) -> None:
        super().__init__()
        self.retry_after_s = max(1, retry_after_s)


class DatabaseUnavailable(Unavailable):
    """Connection loss, lock timeouts, deadlocks, an exhausted pool: the database's fault."""

    description = "Database unavailable: see Retry-After"
    message = "database unavailable, retry later"


class RequestTimedOut(Unavailable):
    description = "The request took longer than the deadline: see Retry-After"
    message = "request took too long, retry later"


class SchemaNotReady(Unavailable):
    """The database's schema is not the code's (a table or column missing): a migration is
    pending or was rolled back, so retry once it has run."""

    description = "The database schema does not match this service: see Retry-After"
    message = "database schema does not match this service, retry later"
