"""Application factory: lifespan-owned engine, the start-up schema gate, routers, error handlers."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker, database_url, redact
from app.errors import install_error_handlers
from app.health import router as health_router
from app.schema_revision import SchemaMismatch, check_schema
from app.users import router as users_router

logger = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or get_settings()
        url = database_url(config.database_url)
        engine = create_engine(config, url)
        try:
            try:
                await check_schema(engine, config.schema_ahead_policy)
            except SchemaMismatch as exc:
                logger.error("refusing to start: %s", exc)
                raise
            except Exception as exc:
                raise SchemaMismatch(
                    f"cannot check the schema of {redact(url)}: {type(exc).__name__}: {exc}"
                ) from None
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine)
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="User service",
        summary="The Flask-Migrate tutorial's users, async, with safe migrations.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(users_router)
    app.include_router(health_router)
    return app


app = create_app()
