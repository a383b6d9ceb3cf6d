"""An app of its own for a test: settings overridden, its lifespan run, an httpx client on it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from httpx import ASGITransport, AsyncClient

from app.config import Settings
from app.main import create_app


@asynccontextmanager
async def serve(
    settings: Settings, *, client: tuple[str, int] = ("127.0.0.1", 50000), **overrides: Any
) -> AsyncIterator[AsyncClient]:
    """A fresh app (its own pools, hashers and throttle store) seen from `client`'s address."""
    app = create_app(settings.model_copy(update=overrides))
    transport = ASGITransport(app=app, client=client)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        yield http
