"""Probes for orchestrators: /livez (the process answers) and /readyz (it can serve users)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import StateDep
from app.error_handlers import DATABASE_ERRORS, error_response, responses_for
from app.exceptions import DatabaseUnavailable, SchemaNotReady
from app.metrics import count_refusal, set_database_reachable, set_schema_revision
from app.migrate.gate import schema_status
from app.schemas import Probe

router = APIRouter(tags=["ops"])


@router.get("/livez")
async def livez() -> Probe:
    """The process is up and its event loop answers; touches nothing else (no database), so
    a database outage never gets healthy workers restarted."""
    return Probe(status="ok")


@router.get(
    "/readyz", response_model=Probe, responses=responses_for(DatabaseUnavailable, SchemaNotReady)
)
async def readyz(state: StateDep) -> Probe | JSONResponse:
    """Send traffic here? The database answers and its schema is at the code's head; 503
    otherwise (say, after `alembic downgrade`), so a load balancer stops routing to it."""
    try:
        status = await schema_status(state.engine)
    except DATABASE_ERRORS:
        set_database_reachable(False)
        count_refusal(503, "not_ready")
        return error_response(DatabaseUnavailable())
    set_database_reachable(True)
    set_schema_revision(status.database_revision, status.code_revision)
    if not status.matches_code:
        count_refusal(503, "not_ready")
        return error_response(
            SchemaNotReady(), revision=status.database_revision, code_revision=status.code_revision
        )
    return Probe(status="ok")
