"""Is the journal intact, and does every applied migration still do what it did when it ran?

`python -m app.migrate journal --check` reports every finding; each upgrade/downgrade/stamp
refuses to start while an applied migration changed (unless MIGRATION_ALLOW_EDITED=1, which it
journals) and logs the journal's own problems.
"""

import logging

from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from app.config import Settings
from app.migrate.checksums import edited_migrations, refusal
from app.migrate.gate import read_revision
from app.migrate.journal import Journal, read_journal
from app.migrate.journal_chain import chain_problems, tail_problem

logger = logging.getLogger(__name__)


def journal_problems(connection: Connection, script: ScriptDirectory) -> list[str]:
    """Rows changed or missing from the hash chain, and a journal that ends elsewhere."""
    rows = read_journal(connection)
    problems = chain_problems(rows)
    tail = tail_problem(rows, script, read_revision(connection))
    return [*problems, tail] if tail else problems


def findings(connection: Connection, script: ScriptDirectory) -> list[str]:
    """Everything `journal --check` fails on."""
    edits = edited_migrations(read_journal(connection), script, read_revision(connection))
    return journal_problems(connection, script) + [e.message for e in edits]


def guard_applied_migrations(
    connection: Connection, settings: Settings, script: ScriptDirectory, journal: Journal
) -> None:
    """Before a run: refuse if an applied migration changed, or journal the override."""
    for problem in journal_problems(connection, script):
        logger.warning("migration journal: %s", problem)
    edits = edited_migrations(read_journal(connection), script, read_revision(connection))
    if not edits:
        return
    if not settings.migration_allow_edited:
        raise refusal(edits)
    for edit in edits:
        logger.warning("MIGRATION_ALLOW_EDITED=1 accepts: %s", edit.message)
        journal.record_override(
            edit.revision, edit.checksum, edit.modules, f"MIGRATION_ALLOW_EDITED=1: {edit.message}"
        )
