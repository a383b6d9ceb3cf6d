"""The journal's hash chain: each row's SHA-256 covers its contents and the previous row's hash.

Changing a row breaks its own hash; deleting one breaks the link of the row after it; deleting
rows from the end leaves a journal that no longer ends where `alembic_version` is. Anyone with
write access to the database can still recompute the whole chain: the hash of the last row
(`python -m app.migrate journal --check` prints it) is what to keep somewhere else, such as the
deploy log, to tell a rewritten journal from the real one.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from alembic.script import ScriptDirectory

GENESIS = "0" * 64  # the "previous hash" of the first row
# Every column but the id (assigned by the database after the hash is computed) and the hashes.
CHAINED = (
    "revision",
    "direction",
    "checksum",
    "modules",
    "success",
    "started_at",
    "duration_ms",
    "error",
    "host",
    "app_version",
    "note",
)


def row_digest(row: Mapping[str, Any], prev_hash: str) -> str:
    """The hash of one row, given the hash of the row before it."""
    values: list[Any] = [prev_hash]
    for name in CHAINED:
        value = row.get(name)
        if isinstance(value, datetime):
            value = value.isoformat(sep=" ", timespec="microseconds")
        elif name == "success":
            value = bool(value)
        values.append(value)
    canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe(row: Mapping[str, Any]) -> str:
    return f"journal row {row['id']} ({row['revision']} {row['direction']}, {row['started_at']})"


def chain_problems(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What breaks the chain: rows changed, rows missing, rows without a hash."""
    problems = []
    for index, row in enumerate(rows):
        if not row.get("row_hash"):
            problems.append(
                f"{describe(row)} carries no hash: written by code older than the hash chain, "
                "or its hash was removed"
            )
            continue
        before = rows[index - 1] if index else None
        expected = GENESIS if before is None else before.get("row_hash")
        if expected and row.get("prev_hash") != expected:
            problems.append(
                f"{describe(row)} does not follow "
                + (
                    "the start of the journal: rows before it were deleted"
                    if before is None
                    else f"row {before['id']}: a row between them was deleted, or row "
                    f"{before['id']}'s hash was rewritten"
                )
            )
        if row_digest(row, str(row.get("prev_hash") or "")) != row["row_hash"]:
            problems.append(
                f"{describe(row)} was changed after it was written: its hash no longer matches "
                "its contents"
            )
    return problems


class _Unknown:
    """The journal cannot say (a merge revision, a file gone)."""


UNKNOWN = _Unknown()


def journal_revision(rows: Sequence[Mapping[str, Any]], script: ScriptDirectory) -> object:
    """Where the successful steps of the journal leave the database (None: base)."""
    revision: object = None
    for row in rows:
        if not row["success"]:
            continue
        if row["direction"] == "upgrade":
            revision = row["revision"]
        elif row["direction"] == "stamp":
            revision = None if row["revision"] == "base" else row["revision"]
        elif row["direction"] == "downgrade":
            try:
                down = script.get_revision(row["revision"])
            except Exception:
                return UNKNOWN
            if down is None or not isinstance(down.down_revision, str | None):
                return UNKNOWN  # a merge, or a revision this code does not know
            revision = down.down_revision
    return revision


def tail_problem(
    rows: Sequence[Mapping[str, Any]], script: ScriptDirectory, database_revision: str | None
) -> str | None:
    """Whether the journal ends where the database is (rows deleted from its end, if not)."""
    ends_at = journal_revision(rows, script)
    if ends_at is UNKNOWN or ends_at == database_revision:
        return None
    return (
        f"the journal leaves the database at {ends_at or 'base'}, but alembic_version says "
        f"{database_revision or 'base'}: rows were deleted from the journal's end, or a "
        "migration ran without it"
    )
