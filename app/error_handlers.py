"""Every failure as one JSON shape, `{"detail": ...}`: the handlers and the OpenAPI entries."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.exceptions import DatabaseUnavailable, DomainError, SchemaNotReady, Unavailable
from app.metrics import count_refusal

logger = logging.getLogger(__name__)

# Connection loss, lock timeouts, deadlocks and an exhausted pool: the database's fault and
# worth a retry (503). Other driver errors are our bugs and stay 500s.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,  # a socket error the driver did not wrap
)

# MySQL/MariaDB: no such table, no such column. SQLite says so in words.
MISSING_SCHEMA_CODES = frozenset({1146, 1054})
MISSING_SCHEMA_WORDS = ("no such table", "no such column")


def is_missing_schema(exc: BaseException) -> bool:
    """Is this driver error a table or column the code expects and the database lacks?"""
    if not isinstance(exc, DBAPIError):
        return False
    args = getattr(exc.orig, "args", ())
    if args and args[0] in MISSING_SCHEMA_CODES:
        return True
    return str(exc.orig).startswith(MISSING_SCHEMA_WORDS)


def _reason(error: DomainError) -> str:
    """`HashingBusy` -> `hashing_busy`: the metric label for a refusal."""
    name = type(error).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class ErrorMessage(BaseModel):
    detail: str


def error_response(error: DomainError, **extra: Any) -> JSONResponse:
    """The answer for `error` (a 503 carries Retry-After); `extra` adds fields to the body."""
    return JSONResponse(
        {"detail": error.detail, **extra}, status_code=error.status_code, headers=error.headers
    )


def responses_for(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """A route's OpenAPI error answers, taken from the exception classes it can raise."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = responses.setdefault(
            error.status_code,
            {"model": ErrorMessage, "description": error.description, "content": {}},
        )
        if entry["description"] != error.description:
            entry["description"] += f"; {error.description}"
        examples = entry["content"].setdefault("application/json", {}).setdefault("examples", {})
        examples[error.__name__] = {"value": {"detail": error.example().detail}}
    return responses


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
    if isinstance(exc, Unavailable):
        count_refusal(exc.status_code, _reason(exc))
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's default body echoes the submitted input (passwords included): keep only
    # where the problem is and what it is.
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def _driver_code(exc: Exception) -> str:
    """The driver's error number (2013: connection lost, 1047: Galera node not ready), if any."""
    args = getattr(getattr(exc, "orig", None), "args", ())
    return f" {args[0]}" if args and isinstance(args[0], int) else ""


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # Log the kind of failure only: driver messages can carry statement parameters.
    if is_missing_schema(exc):
        logger.error("database schema does not match the code: %s", type(exc).__name__)
        return await _domain_error(_request, SchemaNotReady())
    logger.warning("database unavailable: %s%s", type(exc).__name__, _driver_code(exc))
    return await _domain_error(_request, DatabaseUnavailable())


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # Any other driver error is a bug of ours: the catch-all in app.access_log answers a JSON 500.
    if is_missing_schema(exc):
        return await _database_unavailable(request, exc)
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for exc_type in DATABASE_ERRORS:
        app.add_exception_handler(exc_type, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
