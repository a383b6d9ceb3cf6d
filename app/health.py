"""GET /health: is the database reachable, and does its schema revision match the code?"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.errors import DATABASE_ERRORS, DATABASE_UNAVAILABLE
from app.schema_revision import code_head, schema_status
from app.schemas import Health

router = APIRouter()


@router.get(
    "/health",
    tags=["ops"],
    response_model=Health,
    responses={
        503: {
            "description": "Database unreachable",
            "content": {
                "application/json": {
                    "example": {"detail": DATABASE_UNAVAILABLE, "database": "unreachable"}
                }
            },
        }
    },
)
async def health(request: Request) -> Health | JSONResponse:
    try:
        status = await schema_status(request.app.state.engine)
    except DATABASE_ERRORS:
        return JSONResponse(
            {
                "detail": DATABASE_UNAVAILABLE,
                "database": "unreachable",
                "code_revision": code_head(),
            },
            status_code=503,
        )
    return Health(
        status="ok",
        database="reachable",
        revision=status.database_revision,
        code_revision=status.code_revision,
        schema_matches_code=status.matches_code,
    )
