"""The start-up schema gate: the database's Alembic revision against the code's head."""

import enum
import logging
from dataclasses import dataclass

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.migrate.config import VERSION_TABLE, script_directory

logger = logging.getLogger(__name__)


class SchemaState(enum.Enum):
    AT_HEAD = "at head"
    EMPTY = "empty"
    BEHIND = "behind the code"
    AHEAD = "ahead of the code"


@dataclass(frozen=True)
class SchemaStatus:
    database_revision: str | None
    code_revision: str
    state: SchemaState

    @property
    def matches_code(self) -> bool:
        return self.state is SchemaState.AT_HEAD


class SchemaMismatch(RuntimeError):
    """The database schema is not one this code can serve."""


def code_head() -> str:
    heads = script_directory().get_heads()
    if len(heads) != 1:
        raise SchemaMismatch(f"the code has {len(heads)} migration heads, expected one: {heads}")
    return heads[0]


def read_revision(connection: Connection) -> str | None:
    """The revision alembic_version holds (None: base, or no table yet)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    query = text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 (a constant)
    found = list(connection.execute(query).scalars())
    return found[0] if found else None


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    async with engine.connect() as connection:
        revision = await connection.run_sync(read_revision)
    head = code_head()
    if revision == head:
        state = SchemaState.AT_HEAD
    elif revision is None:
        state = SchemaState.EMPTY
    elif _is_known(revision):
        state = SchemaState.BEHIND
    else:
        state = SchemaState.AHEAD
    return SchemaStatus(database_revision=revision, code_revision=head, state=state)


def _is_known(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False


async def check_schema(engine: AsyncEngine, ahead_policy: str) -> SchemaStatus:
    """Refuse to serve a database the code does not match; see `Settings.schema_ahead_policy`."""
    status = await schema_status(engine)
    if status.state in (SchemaState.EMPTY, SchemaState.BEHIND):
        raise SchemaMismatch(
            f"database schema is {status.state.value} (database revision "
            f"{status.database_revision or 'none'}, code expects {status.code_revision}): "
            "run `alembic upgrade head` before starting the service"
        )
    if status.state is SchemaState.AHEAD:
        message = (
            f"database revision {status.database_revision} is newer than this code "
            f"(head {status.code_revision})"
        )
        if ahead_policy != "warn":
            raise SchemaMismatch(
                message + ": deploy the matching code, or set SCHEMA_AHEAD_POLICY=warn to serve "
                "an expand-only newer schema during a rolling deploy; a database made by the "
                "tutorial's Flask app (a Flask-Migrate revision) is taken over with "
                "`python -m app.migrate adopt`"
            )
        logger.warning("%s; serving anyway (SCHEMA_AHEAD_POLICY=warn)", message)
    return status
