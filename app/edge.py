"""The edge of the app: which Host names it serves, the headers every answer carries, and JSON
bodies with a key given twice.

Plain ASGI middleware (see app/main.py for their order). What a request looks like before the
app sees it (header size, header time) is bounded by the HTTP protocol, app/http_protocol.py.
"""

import json
from collections.abc import Collection, Sequence
from typing import Any

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.asgi import HttpMiddleware

_HOST_ALLOWED = "user_service.host_allowed"


class HostCheckMiddleware(HttpMiddleware):
    """Starlette's `TrustedHostMiddleware`, answering an unknown Host with a JSON 400.

    A page on rebind.attacker.example that resolves to 127.0.0.1 reaches a local instance
    with that name in its Host header: refusing unknown names stops DNS rebinding. `exempt`
    paths (the probes, /metrics) answer any Host, since load balancers and scrapers address
    an instance by its IP.
    """

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Sequence[str], exempt: Collection[str]
    ) -> None:
        super().__init__(app)
        self.exempt = frozenset(exempt)
        self.trusted = TrustedHostMiddleware(
            self._allowed, allowed_hosts=allowed_hosts, www_redirect=False
        )

    async def _allowed(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_HOST_ALLOWED] = True
        await self.app(scope, receive, send)

    def applies_to(self, scope: Scope) -> bool:
        return super().applies_to(scope) and scope["path"] not in self.exempt

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = False

        async def send_unless_refused(message: Message) -> None:
            nonlocal refused
            if scope.get(_HOST_ALLOWED):
                await send(message)
            else:  # TrustedHostMiddleware's own plain-text answer: replaced below
                refused = True

        await self.trusted(scope, receive, send_unless_refused)
        if refused:
            response = JSONResponse({"detail": "this Host is not served here"}, status_code=400)
            await response(scope, receive, send)


SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    # Answers are per user and per moment: no browser or proxy keeps a copy.
    (b"cache-control", b"no-store"),
)


class SecurityHeadersMiddleware(HttpMiddleware):
    """Adds `X-Content-Type-Options: nosniff` and `Cache-Control: no-store` to every answer
    that does not set them itself."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )


class DuplicateKeyMiddleware(HttpMiddleware):
    """A JSON body that gives a key twice is a 422, in FastAPI's validation shape.

    Python's json (and so FastAPI) keeps the last value and says nothing: `{"email": "a@ex.io",
    "email": null}` would mean whatever the parser in front of us did not. The body is parsed
    once more here with a hook that refuses repeats; a body that is not valid JSON at all is
    left for FastAPI to answer. Sits inside the body cap, so it parses at most that many bytes.
    """

    def applies_to(self, scope: Scope) -> bool:
        return (
            super().applies_to(scope)
            and scope["method"] in ("POST", "PUT", "PATCH")
            and _is_json(dict(scope["headers"]).get(b"content-type"))
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            json.loads(body, object_pairs_hook=_refuse_duplicates)
        except DuplicateKey as exc:
            error = {
                "type": "json_invalid",
                "loc": ["body"],
                "msg": f"duplicate key {exc.key[:64]!r} in a JSON object",
            }
            await JSONResponse({"detail": [error]}, status_code=422)(scope, receive, send)
            return
        except (ValueError, RecursionError):
            pass  # not JSON, or too deep: FastAPI gives its own answer

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
