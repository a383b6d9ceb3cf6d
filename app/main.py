"""Application factory: lifespan-owned engine, the start-up schema gate, routers, error handlers."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker, database_url, redact
from app.errors import COMMON_RESPONSES, install_error_handlers
from app.health import router as health_router
from app.limits import BodyLimitMiddleware, DeadlineMiddleware, RateLimitMiddleware
from app.schema_revision import SchemaMismatch, check_schema
from app.security import HashingPool, install_pool
from app.users import router as users_router

logger = logging.getLogger("app")

# At DEBUG these log every statement's parameters or every result row: password hashes.
# (At INFO SQLAlchemy logs statements, their parameters hidden by the engine.)
DRIVER_LOGGERS = ("aiosqlite", "aiomysql", "sqlalchemy.engine")


def _quiet_driver_loggers() -> None:
    for name in DRIVER_LOGGERS:
        driver = logging.getLogger(name)
        if driver.getEffectiveLevel() < logging.INFO:
            driver.setLevel(logging.INFO)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or get_settings()
        _quiet_driver_loggers()
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
            hashing = HashingPool.from_settings(config)
            previous = install_pool(hashing)
            try:
                yield
            finally:
                install_pool(previous)
                hashing.close()
        finally:
            await engine.dispose()

    app = FastAPI(
        title="User service",
        summary="The Flask-Migrate tutorial's users, async, with safe migrations.",
        version="0.1.0",
        lifespan=lifespan,
        responses=COMMON_RESPONSES,
    )
    install_error_handlers(app)
    # Added innermost first: a request meets the deadline, then the rate limit, then the body cap.
    limits = settings or get_settings()
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    if limits.rate_limit_writes_per_minute > 0:
        app.add_middleware(
            RateLimitMiddleware,
            per_minute=limits.rate_limit_writes_per_minute,
            burst=limits.rate_limit_burst,
        )
    app.add_middleware(DeadlineMiddleware, timeout_s=limits.request_timeout_s)
    app.include_router(users_router)
    app.include_router(health_router)
    return app


app = create_app()
