"""One measurement per request, two outputs: the access log line and the request metrics.

Both are labelled by the route template (`/users/{user_id}`), never the raw path, so a scan of
random paths cannot blow up the number of series. An exception no handler took becomes the
service's JSON 500 here, inside the request-id middleware, so even that answer carries its
`X-Request-ID` and the log line with the traceback carries the same id.
"""

import logging
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import UNMATCHED_ROUTE, observe_request

logger = logging.getLogger("app.access")
errors = logging.getLogger("app.errors")


def route_template(scope: Scope) -> str:
    """The template of the route that served `scope` (the router notes it in the scope).

    A request refused before routing (a wrong Host, the body cap, the rate limit, a duplicate
    JSON key) has none and shares one label with 404s; `user_service_refused_total` counts
    the refusals by reason.
    """
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class AccessMiddleware:
    def __init__(self, app: ASGIApp, *, access_log: bool, metrics: bool) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            errors.exception("unhandled error in %s %s", scope["method"], route_template(scope))
            if status:  # the answer had begun: the server closes the connection
                raise
            status = 500
            response = JSONResponse({"detail": "internal server error"}, status_code=500)
            await response(scope, receive, send)
        finally:
            self._record(scope, status or 499, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        if not (self.access_log or self.metrics):
            return
        method = scope["method"]
        route = route_template(scope)
        if self.metrics:
            observe_request(method, route, status, seconds)
        if self.access_log:
            client = scope.get("client")
            logger.info(
                "%s %s %d %.1f ms",
                method,
                route,
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
