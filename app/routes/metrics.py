"""GET /metrics: Prometheus text for every worker, to the networks allowed to scrape it.

Served on the service's own port: uvicorn's workers share one listening socket, and a second
port would need a server of its own in the parent process, which uvicorn does not run. The
database-derived figures (schema revision, migration journal) are read at scrape time.
"""

import asyncio
import ipaddress
from collections.abc import Sequence
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, func, inspect, select

from app.deps import StateDep
from app.error_handlers import DATABASE_ERRORS
from app.metrics import render, set_database_reachable, set_migration_journal, set_schema_revision
from app.migrate.config import JOURNAL_TABLE
from app.migrate.gate import schema_status
from app.migrate.journal import journal_table
from app.state import AppState

# A scrape waits at most this long for the database-derived figures, then serves the rest.
DATABASE_WAIT_S = 2.0
SCRAPE_ERRORS: tuple[type[Exception], ...] = (TimeoutError, *DATABASE_ERRORS)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _journal_summary(connection: Connection) -> list[tuple[str, bool, int, datetime | None]]:
    if not inspect(connection).has_table(JOURNAL_TABLE):
        return []
    t = journal_table.c
    query = select(t.direction, t.success, func.count(), func.max(t.started_at)).group_by(
        t.direction, t.success
    )
    return [(d, bool(s), int(n), last) for d, s, n, last in connection.execute(query)]


async def refresh_from_database(state: AppState) -> None:
    try:
        async with asyncio.timeout(DATABASE_WAIT_S):
            status = await schema_status(state.engine)
            async with state.engine.connect() as connection:
                journal = await connection.run_sync(_journal_summary)
    except SCRAPE_ERRORS:
        set_database_reachable(False)
        return
    set_database_reachable(True)
    set_schema_revision(status.database_revision, status.code_revision)
    set_migration_journal(journal)


def build_router(allowed_networks: Sequence[str]) -> APIRouter:
    networks: list[Network] = [
        ipaddress.ip_network(n, strict=False) for n in allowed_networks if n != "*"
    ]
    anyone = "*" in allowed_networks
    router = APIRouter()

    def allowed(host: str | None) -> bool:
        if anyone:
            return True
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in networks)

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request, state: StateDep) -> Response:
        if not allowed(request.client.host if request.client else None):
            return JSONResponse({"detail": "metrics are not served to this address"}, 403)
        await refresh_from_database(state)
        body, content_type = render()
        return Response(body, media_type=content_type)

    return router
