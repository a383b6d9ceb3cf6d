"""`python -m app.migrate`: read and verify the journal, list or purge the archives kept, lint
revisions, key usernames a previous release left without one, adopt the tutorial's database."""

import argparse
import asyncio
import sys
from collections.abc import Sequence

from sqlalchemy import Connection

from app.config import get_settings
from app.migrate.adopt.command import add_adopt_command
from app.migrate.catalog import ensure_catalog, register_untracked
from app.migrate.config import script_directory
from app.migrate.ddl_guard import guard_ddl
from app.migrate.integrity import findings
from app.migrate.journal import format_rows, read_journal
from app.migrate.lint.command import add_lint_command
from app.migrate.lock import migration_lock
from app.migrate.oneoff import run_on_database
from app.migrate.retention import list_archives, purge_archives
from app.migrate.username_keys import add_backfill_keys_command


def _journal(args: argparse.Namespace) -> int:
    def read(connection: Connection) -> tuple[list[dict[str, object]], list[str]]:
        rows = read_journal(connection)
        return rows, findings(connection, script_directory()) if args.check else []

    rows, problems = asyncio.run(run_on_database(read))
    shown = rows[-args.limit :] if args.limit else rows
    print(format_rows(shown) if shown else "the journal is empty: no migration has run here")
    if not args.check:
        return 0
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if problems:
        return 1
    last = rows[-1]["row_hash"] if rows else "-"
    print(
        f"journal intact: {len(rows)} rows chained, last hash {last}; every applied migration "
        "and the modules it calls match what ran"
    )
    return 0


def _archive(args: argparse.Namespace) -> int:
    settings = get_settings()
    max_age = settings.archive_max_age_days
    if args.action == "list":
        archives = asyncio.run(run_on_database(lambda c: list_archives(c, max_age)))
        for archive in archives:
            made = f"{archive.created_at:%Y-%m-%d %H:%M} UTC" if archive.created_at else "unknown"
            ends = f"{archive.expires_at:%Y-%m-%d %H:%M} UTC" if archive.expires_at else "unknown"
            print(f"{archive.name}  {archive.rows} rows  created {made}  expires {ends}")
        if not archives:
            print("no archives")
        return 0
    if not args.yes:
        print("purge drops archived data for good; run again with --yes", file=sys.stderr)
        return 2

    def purge(connection: Connection) -> list[str]:
        # Under the migration lock (never while a migration restores from what it drops), and
        # with bounded lock waits: dropping capture triggers needs the live table's lock.
        lock = migration_lock(
            connection,
            timeout_s=settings.migration_lock_timeout_s,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            lease_s=settings.migration_lock_lease_s,
        )
        with lock, guard_ddl(connection, settings):
            ensure_catalog(connection)
            register_untracked(connection)
            return purge_archives(
                connection,
                max_age_days=max_age,
                revision=args.revision,
                expired_only=args.expired,
            )

    dropped = asyncio.run(run_on_database(purge))
    print("\n".join(f"dropped {name}" for name in dropped) or "no archive to purge")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m app.migrate",
        description="Migration bookkeeping of the configured database (DATABASE_URL).",
    )
    commands = root.add_subparsers(dest="command", required=True)
    journal = commands.add_parser("journal", help="show the journal of migration steps")
    journal.add_argument("-n", "--limit", type=int, default=None, help="only the last N steps")
    journal.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the journal's hash chain is broken, or an applied migration's file or "
        "a module it calls changed since it ran",
    )
    journal.set_defaults(run=_journal)
    archive = commands.add_parser("archive", help="list the data downgrades kept, or purge it")
    archive.add_argument("action", choices=["list", "purge"])
    which = archive.add_mutually_exclusive_group()
    which.add_argument("--revision", help="purge only the archives made by this revision")
    which.add_argument(
        "--expired",
        action="store_true",
        help="purge only archives older than ARCHIVE_MAX_AGE_DAYS",
    )
    archive.add_argument("--yes", action="store_true", help="confirm: purged data is gone")
    archive.set_defaults(run=_archive)
    add_lint_command(commands)
    add_backfill_keys_command(commands)
    add_adopt_command(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code
