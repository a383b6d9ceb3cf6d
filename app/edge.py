"""The edge of the app: the one ASGI layer every request crosses before FastAPI.

A request meets, in this order: its request id (every later line and answer carries it), the
security headers and the access line and metrics (which see every answer, a JSON 500 included),
the Host check, the deadline, the write rate limit, the body cap and the duplicate-key check.
One layer rather than eight middlewares: each layer cost a coroutine and a wrapped `send` per
request, and together they were a tenth of a read's CPU (docs/benchmarks.md). What a request
looks like before the app sees it (header size, header time) is bounded by the HTTP protocol,
app/http_protocol.py.
"""

import asyncio
import logging
import time
from collections.abc import Collection, Sequence

from limits import RateLimitItem
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import request_body
from app.access_log import RequestRecorder, route_template
from app.config import Settings
from app.error_handlers import error_response
from app.exceptions import RequestTimedOut
from app.limits import WRITE_METHODS, RateLimiter, write_limit, write_refusal
from app.metrics import count_refusal
from app.request_id import HEADER_KEY, take_request_id

logger = logging.getLogger("app.limits")
errors = logging.getLogger("app.errors")

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    # Answers are per user and per moment: no browser or proxy keeps a copy.
    (b"cache-control", b"no-store"),
)
# Paths that answer whatever the Host header: load balancers and scrapers use the IP.
HOST_EXEMPT = ("/livez", "/readyz", "/health", "/metrics")
_HOST_ALLOWED = "user_service.host_allowed"


class HostPolicy:
    """Which Host names are served: Starlette's `TrustedHostMiddleware` rules ("*.example.com"
    patterns, IPv6 literals), asked as a question rather than run as a layer.

    A page on rebind.attacker.example that resolves to 127.0.0.1 reaches a local instance with
    that name in its Host header: refusing unknown names stops DNS rebinding.
    """

    def __init__(self, allowed_hosts: Sequence[str], exempt: Collection[str]) -> None:
        self.exempt = frozenset(exempt)
        self._check = TrustedHostMiddleware(
            self._mark_allowed, allowed_hosts=allowed_hosts, www_redirect=False
        )

    @staticmethod
    async def _mark_allowed(scope: Scope, _receive: Receive, _send: Send) -> None:
        scope[_HOST_ALLOWED] = True

    async def allows(self, scope: Scope) -> bool:
        if scope["path"] in self.exempt:
            return True
        await self._check(scope, _nothing_received, _discard)  # its refusal is not sent
        return bool(scope.pop(_HOST_ALLOWED, False))


async def _nothing_received() -> Message:
    return {"type": "http.disconnect"}


async def _discard(_message: Message) -> None:
    return None


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings, host_exempt: Collection[str]) -> None:
        self.app = app
        self.hosts = HostPolicy(settings.allowed_hosts, host_exempt)
        self.timeout_s = settings.request_timeout_s
        self.max_body_bytes = settings.max_body_bytes
        self.write_limit: RateLimitItem | None = None
        if settings.rate_limit_writes_per_minute > 0:
            self.write_limit = write_limit(
                settings.rate_limit_writes_per_minute, settings.rate_limit_burst
            )
        self.recorder = RequestRecorder(
            access_log=settings.access_log, metrics=settings.metrics_enabled
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = take_request_id(headers.get(HEADER_KEY)).encode("latin-1")
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                answer = list(message.get("headers", ()))
                present = {name.lower() for name, _ in answer}
                answer += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                answer.append((HEADER_KEY, request_id))
                message = {**message, "headers": answer}
            await send(message)

        fallback = 499  # the client left before any answer
        deadline = asyncio.timeout(self.timeout_s)
        try:
            try:
                async with deadline:
                    await self._admit(scope, receive, send_with_headers, headers)
            except TimeoutError:
                # Connect and pool timeouts bound waiting for a *new* connection, but nothing
                # in aiomysql bounds a read on an established one: a stalled database would
                # hold the request forever. Cancelling it lets the connection be invalidated.
                # The deadline also bounds a client that sends its body slowly.
                if not deadline.expired() or status:
                    raise
                logger.warning("request timed out: %s %s", scope["method"], scope["path"])
                count_refusal(503, "request_timeout")
                await error_response(RequestTimedOut())(scope, receive, send_with_headers)
        except Exception:
            errors.exception("unhandled error in %s %s", scope["method"], route_template(scope))
            if status:  # the answer had begun: the server closes the connection
                raise
            fallback = 500
            response = JSONResponse({"detail": "internal server error"}, status_code=500)
            await response(scope, receive, send_with_headers)
        finally:
            self.recorder.record(scope, status or fallback, time.perf_counter() - started)

    async def _admit(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        """The Host check, the write limit, the body cap and duplicate keys; then the app."""
        refusal = await self._refusal(scope)
        if refusal is None and request_body.may_have_body(scope, headers):
            body = await request_body.read_capped(receive, headers, self.max_body_bytes)
            if body is None:  # the client went away
                return
            if isinstance(body, Response):
                refusal = body
            else:
                if scope["method"] in request_body.JSON_METHODS and request_body.is_json(
                    headers.get(b"content-type")
                ):
                    refusal = request_body.duplicate_key_refusal(body)
                receive = request_body.replaying(body, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _refusal(self, scope: Scope) -> Response | None:
        if not await self.hosts.allows(scope):
            return JSONResponse({"detail": "this Host is not served here"}, status_code=400)
        if self.write_limit is not None and scope["method"] in WRITE_METHODS:
            limiter: RateLimiter = scope["app"].state.runtime.limiter
            return await write_refusal(limiter, self.write_limit, scope)
        return None
