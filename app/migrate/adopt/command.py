"""The `adopt` subcommand: survey the tutorial's database, print the plan, carry it out."""

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, text

from app.config import Settings, get_settings
from app.migrate.adopt.passwords import add_hash_column, hash_passwords, unhashed
from app.migrate.adopt.takeover import (
    copy_users,
    drop_plaintext,
    forget_revision,
    migrate_to_head,
    set_aside,
)
from app.migrate.adopt.tutorial import (
    HELD_TABLE,
    TABLE,
    Found,
    NotTutorial,
    Stage,
    is_ours,
    recognise,
)
from app.migrate.adopt.usernames import username_problems
from app.migrate.gate import code_head
from app.migrate.oneoff import run_on_database

T = TypeVar("T")


@dataclass(frozen=True)
class Survey:
    found: Found
    users: int
    unhashed: int
    no_password: int
    problems: list[str]


def survey(connection: Connection) -> Survey:
    """Read only: where the database stands and what would stop the adoption."""
    found = recognise(connection)
    if found.stage is Stage.OURS:
        return Survey(found, 0, 0, 0, [])
    count = f"SELECT COUNT(*) FROM {found.table}"  # noqa: S608
    users = int(connection.execute(text(count)).scalar_one())
    pending = unhashed(connection, found.table) if found.has_hash_column else users
    no_password = 0
    if found.stage is Stage.TUTORIAL:
        empty = f"{count} WHERE password IS NULL OR password = ''"
        no_password = int(connection.execute(text(empty)).scalar_one())
    return Survey(found, users, pending, no_password, username_problems(connection, found.table))


def plan(found: Survey, settings: Settings, batch_size: int) -> list[str]:
    head = code_head()
    email = "with" if found.found.has_email else "without"
    revision = found.found.revision
    if revision is None or is_ours(revision):
        revision = "(set aside: see the journal's adopt row)"
    resumed = found.found.stage is Stage.TAKING_OVER
    done = " (done)" if resumed else ""
    lines = [
        f"the tutorial's database ({email} its email column), Flask-Migrate revision "
        f"{revision}: {found.users} users",
        "usernames: every one can be kept (no duplicates, no look-alikes, none too long)",
    ]
    if resumed:
        lines.append(f"resuming: the passwords are hashed and the users wait in {HELD_TABLE}")
    elif found.unhashed < found.users:
        lines.append(f"resuming: {found.users - found.unhashed} passwords hashed by a run before")
    if found.no_password:
        lines.append(
            f"{found.no_password} users have no password: they cannot log in until an admin "
            "sets one (in the tutorial they could not either)"
        )
    lines += [
        "steps:",
        f"  1.{done} add {TABLE}.password_hash and hash {found.unhashed} plaintext passwords with "
        f"argon2id (m={settings.hash_memory_kib} KiB, t={settings.hash_time_cost}, "
        f"p={settings.hash_parallelism}), {batch_size} per committed batch",
        f"  2.{done} rename {TABLE} to {HELD_TABLE}; record the Flask-Migrate revision in the "
        "migration journal",
        f"  3. alembic upgrade head: this service's revisions up to {head} build {TABLE}",
        "  4. copy the users: ids, usernames, emails kept exactly, hashes with them",
        f"  5. drop {HELD_TABLE}: the plaintext passwords are destroyed, not archived",
    ]
    return lines


def _run(work: Callable[[Connection], T]) -> T:
    return asyncio.run(run_on_database(work))


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def adopt(args: argparse.Namespace) -> int:
    settings = get_settings()
    batch_size = args.batch_size or settings.migration_backfill_batch_size
    try:
        found = _run(survey)
    except NotTutorial as exc:
        print(
            f"REFUSED: not the tutorial's database (as its Flask app and Flask-Migrate make it): "
            f"{exc}. Nothing was changed.",
            file=sys.stderr,
        )
        return 1
    stage, revision = found.found.stage, found.found.revision
    if stage is Stage.OURS:
        if revision == code_head():
            print(f"already adopted: the database is at revision {revision}; nothing to do")
            return 0
        print(
            f"this service's migrations already manage this database (revision {revision}): "
            "run `alembic upgrade head`, not adopt",
            file=sys.stderr,
        )
        return 1
    if found.problems:
        print(
            "REFUSED: some usernames break this service's rules; nothing was changed. Fix "
            "them in the tutorial's database (or its app), then run adopt again:\n  "
            + "\n  ".join(found.problems),
            file=sys.stderr,
        )
        return 1
    print("\n".join(plan(found, settings, batch_size)), flush=True)
    if args.dry_run:
        print("dry run: nothing was changed")
        return 0
    return _carry_out(found, settings, batch_size)


def _carry_out(found: Survey, settings: Settings, batch_size: int) -> int:
    started = time.monotonic()
    hashing_s = 0.0
    revision = found.found.revision
    if found.found.stage is Stage.TUTORIAL:
        assert revision is not None  # recognise() refuses a tutorial database without one

        def hash_all(connection: Connection) -> float:
            if not found.found.has_hash_column:
                add_hash_column(connection)
            done = hash_passwords(
                connection,
                settings,
                batch_size=batch_size,
                pause_s=settings.migration_backfill_pause_s,
                report=_report,
            )
            if unhashed(connection, TABLE):  # written meanwhile by the tutorial's app
                raise SystemExit("users were added while hashing: stop the Flask app, rerun")
            return done.seconds

        hashing_s = _run(hash_all)
        _run(lambda c: set_aside(c, revision, found.users))
    elif revision is not None and not is_ours(revision):  # stopped right after the rename
        _run(lambda c: forget_revision(c, revision, found.users))
    migrate_to_head(settings.database_url)

    def finish(connection: Connection) -> int:
        copied = copy_users(connection, batch_size=batch_size, report=_report)
        drop_plaintext(connection)
        return copied

    _run(finish)
    total_s = time.monotonic() - started
    share = f"{100 * hashing_s / total_s:.0f}%" if total_s else "-"
    print(
        f"adopted: {found.users} users at revision {code_head()}, plaintext passwords dropped; "
        f"{total_s:.1f} s, hashing {hashing_s:.1f} s ({share})"
    )
    return 0


def add_adopt_command(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register `adopt`: take over a database made by the tutorial's Flask app."""
    command = commands.add_parser(
        "adopt",
        help="take over a database made by the tutorial's Flask app (hashes its passwords)",
    )
    command.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    command.add_argument(
        "--batch-size",
        type=_positive,
        default=None,
        help="passwords hashed per committed batch (default MIGRATION_BACKFILL_BATCH_SIZE)",
    )
    command.set_defaults(run=adopt)
