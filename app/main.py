"""Application factory: a lifespan that owns the runtime state; routers, handlers, limits."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.config import Settings, get_settings
from app.db import database_url, redact
from app.error_handlers import COMMON_RESPONSES, install_error_handlers
from app.limits import BodyLimitMiddleware, DeadlineMiddleware, RateLimitMiddleware
from app.migrate.gate import SchemaMismatch, check_schema
from app.routes.auth import router as auth_router
from app.routes.health import router as health_router
from app.routes.users import router as users_router
from app.state import AppState

logger = logging.getLogger("app")

# At DEBUG these log every statement's parameters or every result row: password hashes.
# (At INFO SQLAlchemy logs statements, their parameters hidden by the engine.)
DRIVER_LOGGERS = ("aiosqlite", "aiomysql", "sqlalchemy.engine")


def _quiet_driver_loggers() -> None:
    for name in DRIVER_LOGGERS:
        driver = logging.getLogger(name)
        if driver.getEffectiveLevel() < logging.INFO:
            driver.setLevel(logging.INFO)


async def _check_schema_or_refuse(state: AppState, settings: Settings) -> None:
    try:
        await check_schema(state.engine, settings.schema_ahead_policy)
    except SchemaMismatch as exc:
        logger.error("refusing to start: %s", exc)
        raise
    except Exception as exc:
        url = redact(database_url(settings.database_url))
        raise SchemaMismatch(
            f"cannot check the schema of {url}: {type(exc).__name__}: {exc}"
        ) from None


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""
    config = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _quiet_driver_loggers()
        state = AppState.build(config)
        try:
            await _check_schema_or_refuse(state, config)
            app.state.runtime = state
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="User service",
        summary="The Flask-Migrate tutorial's users, async, with safe migrations.",
        version="0.1.0",
        lifespan=lifespan,
        responses=COMMON_RESPONSES,
    )
    install_error_handlers(app)
    # Added innermost first: a request meets the deadline, then the rate limit, then the body cap.
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    if config.rate_limit_writes_per_minute > 0:
        app.add_middleware(
            RateLimitMiddleware,
            per_minute=config.rate_limit_writes_per_minute,
            burst=config.rate_limit_burst,
        )
    app.add_middleware(DeadlineMiddleware, timeout_s=config.request_timeout_s)
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(health_router)
    return app


app = create_app()
