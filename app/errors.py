"""Domain errors and the handlers that turn every failure into one JSON shape: {"detail": ...}."""

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """An error the client caused or can act on; `status_code` picks the HTTP answer."""

    status_code = status.HTTP_400_BAD_REQUEST
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UserNotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} not found")


class UsernameTaken(DomainError):
    status_code = status.HTTP_409_CONFLICT

    def __init__(self) -> None:
        super().__init__("username already taken")


class HashingBusy(DomainError):
    """Every password hasher is busy and the wait for one ran out: a burst, worth a retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}

    def __init__(self) -> None:
        super().__init__("too many registrations at once, retry later")


DATABASE_UNAVAILABLE = "database unavailable, retry later"
# Connection loss, lock timeouts, deadlocks and an exhausted pool: the database's fault and
# worth a retry (503). Other driver errors are our bugs and stay 500s.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,  # a socket error the driver did not wrap
)
REQUEST_TIMED_OUT = "request took too long, retry later"


class ErrorMessage(BaseModel):
    detail: str


# Answers any route can give, documented once for the whole app (a route's own entry wins).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "Body not parseable (not UTF-8, nested too deep)"},
    413: {"model": ErrorMessage, "description": "Request body over the size cap"},
    429: {"model": ErrorMessage, "description": "Too many writes from this client (if enabled)"},
    503: {
        "model": ErrorMessage,
        "description": "Database unavailable, hashers busy or request too slow: see Retry-After",
    },
}


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's default body echoes the submitted input (passwords included): keep only
    # where the problem is and what it is.
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # Log the kind of failure only: driver messages can carry statement parameters.
    logger.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse(
        {"detail": DATABASE_UNAVAILABLE},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for exc_type in DATABASE_ERRORS:
        app.add_exception_handler(exc_type, _database_unavailable)
