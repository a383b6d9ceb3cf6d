"""GET /health: is the database reachable, and does its schema revision match the code?

The summary for a person; load balancers and orchestrators use /livez and /readyz
(app/routes/probes.py). A schema that does not match the code is a 503 here too.
"""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import StateDep
from app.error_handlers import DATABASE_ERRORS, error_response, responses_for
from app.exceptions import DatabaseUnavailable, SchemaNotReady
from app.metrics import set_database_reachable, set_schema_revision
from app.migrate.gate import code_head, schema_status
from app.schemas import Health

router = APIRouter()


@router.get(
    "/health",
    tags=["ops"],
    response_model=Health,
    responses=responses_for(DatabaseUnavailable, SchemaNotReady),
)
async def health(state: StateDep) -> Health | JSONResponse:
    try:
        status = await schema_status(state.engine)
    except DATABASE_ERRORS:
        set_database_reachable(False)
        return error_response(
            DatabaseUnavailable(), database="unreachable", code_revision=code_head()
        )
    set_database_reachable(True)
    set_schema_revision(status.database_revision, status.code_revision)
    summary = Health(
        status="ok" if status.matches_code else "schema does not match the code",
        database="reachable",
        revision=status.database_revision,
        code_revision=status.code_revision,
        schema_matches_code=status.matches_code,
    )
    if not status.matches_code:
        return error_response(SchemaNotReady(), **summary.model_dump())
    return summary
