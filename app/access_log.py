"""One measurement per request, two outputs: the access log line and the request metrics.

Both are labelled by the route template (`/users/{user_id}`), never the raw path, so a scan of
random paths cannot blow up the number of series. An exception no handler took becomes the
service's JSON 500 here, inside the request-id middleware, so even that answer carries its
`X-Request-ID` and the log line with the traceback carries the same id.
"""

import logging
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.asgi import HttpMiddleware, ResponseWatch
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


class AccessMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, access_log: bool, metrics: bool) -> None:
        super().__init__(app)
        self.access_log = access_log
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        watch = ResponseWatch(send)
        fallback = 499  # the client left before any answer
        try:
            await self.app(scope, receive, watch.send)
        except Exception:
            errors.exception("unhandled error in %s %s", scope["method"], route_template(scope))
            if watch.status:  # the answer had begun: the server closes the connection
                raise
            fallback = 500
            response = JSONResponse({"detail": "internal server error"}, status_code=500)
            await response(scope, receive, send)
        finally:
            self._record(scope, watch.status or fallback, time.perf_counter() - started)

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
