"""`python -m app.migrate`: read the journal, list or purge the archives downgrades kept, lint."""

import argparse
import asyncio
import sys
from collections.abc import Sequence

from app.migrate.archive import list_archives, purge_archives
from app.migrate.config import script_directory
from app.migrate.journal import edited_migrations, format_rows, read_journal
from app.migrate.lint.command import add_lint_command
from app.migrate.oneoff import run_on_database
from app.migrate.username_keys import add_backfill_keys_command


def _journal(args: argparse.Namespace) -> int:
    rows = asyncio.run(run_on_database(read_journal))
    warnings = edited_migrations(rows, script_directory())
    shown = rows[-args.limit :] if args.limit else rows
    print(format_rows(shown) if shown else "the journal is empty: no migration has run here")
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return 1 if args.check and warnings else 0


def _archive(args: argparse.Namespace) -> int:
    if args.action == "list":
        archives = asyncio.run(run_on_database(list_archives))
        print("\n".join(f"{name}  {rows} rows" for name, rows in archives) or "no archives")
        return 0
    if not args.yes:
        print("purge drops archived data for good; run again with --yes", file=sys.stderr)
        return 2
    revision = args.revision
    dropped = asyncio.run(run_on_database(lambda c: purge_archives(c, revision)))
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
        "--check", action="store_true", help="exit 1 if an applied migration's file was edited"
    )
    journal.set_defaults(run=_journal)
    archive = commands.add_parser("archive", help="list the data downgrades kept, or purge it")
    archive.add_argument("action", choices=["list", "purge"])
    archive.add_argument("--revision", help="only the archives made by this revision")
    archive.add_argument("--yes", action="store_true", help="confirm: purged data is gone")
    archive.set_defaults(run=_archive)
    add_lint_command(commands)
    add_backfill_keys_command(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code
