"""Application factory: a lifespan that owns the runtime state; routers, handlers, middleware."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from app import metrics
from app.config import Settings, get_settings
from app.db import database_url, redact
from app.edge import HOST_EXEMPT, EdgeMiddleware
from app.error_handlers import COMMON_RESPONSES, install_error_handlers
from app.gc_tuning import pauses_observed, tune_garbage_collector
from app.logging_setup import configure_logging
from app.migrate.gate import SchemaMismatch, check_schema
from app.routes import metrics as metrics_route
from app.routes.auth import router as auth_router
from app.routes.health import router as health_router
from app.routes.probes import router as probes_router
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
        status = await check_schema(state.engine, settings.schema_ahead_policy)
        metrics.set_schema_revision(status.database_revision, status.code_revision)
    except SchemaMismatch as exc:
        logger.error("refusing to start: %s", exc)
        raise
    except Exception as exc:
        url = redact(database_url(settings.database_url))
        raise SchemaMismatch(
            f"cannot check the schema of {url}: {type(exc).__name__}: {exc}"
        ) from None


def add_routes_flat(app: FastAPI, router: APIRouter) -> None:
    """`router`'s routes in the app's own list, as `include_router` did before FastAPI 0.16x.

    It now keeps an included router as one route that works out its routes' effective settings
    (prefix, dependencies, responses) again on every request: about 50 µs of CPU a read here,
    a tenth of it. A router added this way must carry every setting itself (no prefix, no
    dependencies at inclusion; the app's common responses declared on the router).
    """
    app.router.routes.extend(router.routes)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""
    config = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(config)
        _quiet_driver_loggers()
        state = AppState.build(config)
        try:
            await _check_schema_or_refuse(state, config)
            app.state.runtime = state
            tune_garbage_collector(freeze=config.gc_freeze, gen0_threshold=config.gc_gen0_threshold)
            if config.metrics_enabled:
                with pauses_observed(metrics.observe_gc_pause):
                    async with metrics.sampling(state):
                        yield
            else:
                yield
        finally:
            await state.close()

    app = FastAPI(
        title="User service",
        summary="The Flask-Migrate tutorial's users, async, with safe migrations.",
        version="0.1.0",
        lifespan=lifespan,
        responses=COMMON_RESPONSES,
        docs_url="/docs" if config.docs_enabled else None,
        redoc_url="/redoc" if config.docs_enabled else None,
        openapi_url="/openapi.json" if config.docs_enabled else None,
    )
    install_error_handlers(app)
    # One layer in front of every route: request id, headers, access line and metrics, Host
    # check, deadline, write limit, body cap, duplicate keys (app/edge.py, in that order).
    app.add_middleware(EdgeMiddleware, settings=config, host_exempt=HOST_EXEMPT)
    # Routers are matched in order: the users' routes, the hot reads among them, first.
    add_routes_flat(app, users_router)
    app.include_router(auth_router)
    app.include_router(health_router)
    app.include_router(probes_router)
    if config.metrics_enabled:
        app.include_router(metrics_route.build_router(config.metrics_allowed_networks))
    return app


app = create_app()
