"""One measurement per request, two outputs: the access log line and the request metrics.

Both are labelled by the route template (`/users/{user_id}`), never the raw path, so a scan of
random paths cannot blow up the number of series. The edge (app/edge.py) times each request
and calls `RequestRecorder.record` once it is answered, a 500 or a client gone away included.
"""

import logging

from starlette.types import Scope

from app.metrics import UNMATCHED_ROUTE, observe_request

logger = logging.getLogger("app.access")


def route_template(scope: Scope) -> str:
    """The template of the route that served `scope` (the router notes it in the scope).

    A request refused before routing (a wrong Host, the body cap, the rate limit, a duplicate
    JSON key) has none and shares one label with 404s; `user_service_refused_total` counts
    the refusals by reason.
    """
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestRecorder:
    """Writes a finished request's access line and metrics (either may be off)."""

    def __init__(self, *, access_log: bool, metrics: bool) -> None:
        self.access_log = access_log
        self.metrics = metrics

    def record(self, scope: Scope, status: int, seconds: float) -> None:
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
