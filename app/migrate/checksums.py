"""What an applied migration ran: its file and the migration modules it calls, by SHA-256.

Each journal row records both. A migration whose file, or whose helpers (say the archive code
its downgrade relies on), changed after it was applied would no longer undo what it did, so
`upgrade`/`downgrade` refuse to run until the change is accepted with MIGRATION_ALLOW_EDITED=1,
which the journal records as an `override` row carrying the new checksums.
"""

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError

from app.migrate.config import PROJECT_ROOT

# The migration machinery: followed from module to module. Other app modules (models, say)
# count only when a revision imports them itself.
MACHINERY = ("app.migrate", "app.backend")
# What a run is given, like the environment, not what it does: 0005 reads its batch size from
# the settings, and counting app/config.py made any release that added a setting look like an
# edit of 0005, refusing every later upgrade and downgrade. Not recorded, and not compared where
# a journal written before recorded it.
RUN_INPUTS = frozenset({"app.config"})


class EditedMigration(CommandError):
    """An applied migration, or a module it calls, changed since it ran."""


def file_checksum(path: str | Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _is_machinery(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in MACHINERY)


def _app_modules_used_by(module: ModuleType) -> set[str]:
    """The app modules `module` imported, or imported names from."""
    used = set()
    for value in vars(module).values():
        name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", "")
        if isinstance(name, str) and (name == "app" or name.startswith("app.")):
            used.add(name)
    used.discard(module.__name__)
    return used - RUN_INPUTS


def called_modules(module: ModuleType) -> dict[str, str]:
    """{module name: SHA-256 of its file} for the app modules a revision module calls."""
    found = {}
    queue = sorted(_app_modules_used_by(module))
    seen = set(queue)
    while queue:
        name = queue.pop()
        loaded = sys.modules.get(name)
        path = getattr(loaded, "__file__", None)
        checksum = file_checksum(path)
        if loaded is None or checksum is None:
            continue
        found[name] = checksum
        if _is_machinery(name):
            for further in sorted(_app_modules_used_by(loaded) - seen):
                if _is_machinery(further):
                    seen.add(further)
                    queue.append(further)
    return dict(sorted(found.items()))


def script_modules(script: Script | None) -> str | None:
    """`called_modules` of a revision as the journal stores it (JSON), None if unknown."""
    if script is None:
        return None
    try:
        module = script.module
    except Exception:
        return None
    return json.dumps(called_modules(module), sort_keys=True, separators=(",", ":"))


def shown_path(path: str | Path | None) -> str:
    if path is None:
        return "?"
    resolved = Path(path).resolve()
    for root in (PROJECT_ROOT, Path.cwd()):
        if resolved.is_relative_to(root):
            return str(resolved.relative_to(root))
    return str(path)


def module_path(name: str) -> str:
    return shown_path(getattr(sys.modules.get(name), "__file__", None) or name)


@dataclass
class Edit:
    """An applied revision whose file or called modules differ from what the journal holds."""

    revision: str
    path: str
    applied_at: object
    changes: list[str] = field(default_factory=list)
    checksum: str | None = None
    modules: str | None = None

    @property
    def message(self) -> str:
        return (
            f"migration {self.revision} ({self.path}) changed since it was applied on "
            f"{self.applied_at}: " + "; ".join(self.changes)
        )


def _short(checksum: str | None) -> str:
    return checksum[:12] if checksum else "none"


def applied_revisions(script: ScriptDirectory, current: str | None) -> list[str]:
    """The revisions applied to a database at `current`, newest first."""
    if current is None:
        return []
    try:
        return [s.revision for s in script.iterate_revisions(current, "base") if s is not None]
    except Exception:  # a revision this code does not know: nothing to compare it with
        return []


def edited_migrations(
    rows: Iterable[Mapping[str, Any]], script: ScriptDirectory, current: str | None
) -> list[Edit]:
    """Applied revisions that changed since the journal last recorded them (oldest first)."""
    baseline: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if row["success"] and row["direction"] in ("upgrade", "override"):
            baseline[row["revision"]] = row
    edits = []
    for revision in reversed(applied_revisions(script, current)):
        recorded = baseline.get(revision)
        if recorded is None or not recorded["checksum"]:
            continue  # applied before the journal, or by a stamp: nothing recorded to compare
        found = script.get_revision(revision)
        path = found.path if found is not None else None
        row = recorded
        edit = Edit(revision, shown_path(path), row["started_at"])
        edit.checksum = file_checksum(path)
        if edit.checksum is None:
            edit.changes.append(f"{edit.path} is gone")
        elif edit.checksum != row["checksum"]:
            edit.changes.append(
                f"{edit.path} (sha256 {_short(row['checksum'])} then, {_short(edit.checksum)} now)"
            )
        edit.modules = script_modules(found)
        if row.get("modules") and edit.modules is not None:
            then, now = json.loads(row["modules"]), json.loads(edit.modules)
            for name in sorted((set(then) | set(now)) - RUN_INPUTS):
                if then.get(name) != now.get(name):
                    edit.changes.append(
                        f"{module_path(name)}, which it calls (sha256 {_short(then.get(name))} "
                        f"then, {_short(now.get(name))} now)"
                    )
        if edit.changes:
            edits.append(edit)
    return edits


def refusal(edits: Iterable[Edit]) -> EditedMigration:
    return EditedMigration(
        "; ".join(e.message for e in edits)
        + ". An applied migration must keep doing what it did: write a new migration instead. "
        "If the change is deliberate (it leaves what the migration does unchanged), run once "
        "with MIGRATION_ALLOW_EDITED=1; the journal records the override."
    )
