"""GET /health: is the database reachable, and does its schema revision match the code?"""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import StateDep
from app.error_handlers import DATABASE_ERRORS, error_response, responses_for
from app.exceptions import DatabaseUnavailable
from app.migrate.gate import code_head, schema_status
from app.schemas import Health

router = APIRouter()


@router.get(
    "/health", tags=["ops"], response_model=Health, responses=responses_for(DatabaseUnavailable)
)
async def health(state: StateDep) -> Health | JSONResponse:
    try:
        status = await schema_status(state.engine)
    except DATABASE_ERRORS:
        return error_response(
            DatabaseUnavailable(), database="unreachable", code_revision=code_head()
        )
    return Health(
        status="ok",
        database="reachable",
        revision=status.database_revision,
        code_revision=status.code_revision,
        schema_matches_code=status.matches_code,
    )
