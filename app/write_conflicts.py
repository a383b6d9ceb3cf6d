"""Routes whose transaction lost a write conflict run again (a bounded number of times).

MySQL error 1213 is an InnoDB deadlock on one server and, on Galera, a failed certification:
another node committed a write to the same row first, and this transaction, COMMIT included,
was rolled back. Either way nothing of it was kept, so a route whose every effect is in the
request's transaction can simply run again; after `ATTEMPTS` the error goes on to the 503 handler.
Reads get the same 1213 on Galera when a schema change (TOI) reaches their node: it aborts the
statements in flight on its table rather than wait for them. A read has no effect: it runs again.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

CONFLICT_CODES = frozenset({1213})  # ER_LOCK_DEADLOCK
ATTEMPTS = 3
BACKOFF_S = 0.02
# Where FastAPI keeps the exit stack of scope="function" dependencies (the session's commit).
FUNCTION_STACK = "fastapi_function_astack"


def is_write_conflict(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in CONFLICT_CODES


async def _attempt(handler: Callable[[Request], Awaitable[Response]], request: Request) -> Response:
    # FastAPI closes scope="function" dependencies after the handler returns, in a stack of the
    # whole request's: an attempt gets a stack of its own so that its commit, and a conflict
    # there, happen inside it. The request's body is cached on `request`, so it reads again.
    outer = request.scope.get(FUNCTION_STACK)
    try:
        async with AsyncExitStack() as stack:
            request.scope[FUNCTION_STACK] = stack
            return await handler(request)
    finally:
        request.scope[FUNCTION_STACK] = outer


class ConflictRetryRoute(APIRoute):
    """A route run again after a write conflict: only for routes whose effects are all in the
    request's transaction (log lines wait for the commit: `crud.after_commit`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def retrying(request: Request) -> Response:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    return await _attempt(handler, request)
                except DBAPIError as exc:
                    if attempt == ATTEMPTS or not is_write_conflict(exc):
                        raise
                logger.warning(
                    "conflict (1213) on %s %s, attempt %d of %d: running it again",
                    request.method,
                    self.path,
                    attempt,
                    ATTEMPTS,
                )
                # Jitter, so two requests that collided do not collide again in step.
                await asyncio.sleep(BACKOFF_S * attempt * (1 + random.random()))
            raise AssertionError("unreachable")

        return retrying
