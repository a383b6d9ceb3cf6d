"""What every middleware here shares: it acts on some HTTP requests and passes the rest through.

Plain ASGI rather than Starlette's `BaseHTTPMiddleware`, which runs each request in an extra
task and buffers streaming answers.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """Calls `handle` for the requests `applies_to` picks; anything else goes straight on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def applies_to(self, scope: Scope) -> bool:
        return bool(scope["type"] == "http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.applies_to(scope):
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class ResponseWatch:
    """`send`, wrapped to remember the answer's status once it has started (0 until then)."""

    def __init__(self, send: Send) -> None:
        self.downstream = send
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.downstream(message)
