"""`python -m app.migrate lint [paths]`: lint revision files; exit 1 when anything is found."""

import argparse
from typing import Any

from app.migrate.config import PROJECT_ROOT
from app.migrate.lint.check import lint_paths

DEFAULT_PATH = PROJECT_ROOT / "alembic" / "versions"


def _lint(args: argparse.Namespace) -> int:
    findings = lint_paths(args.paths or [DEFAULT_PATH])
    for finding in findings:
        print(finding.format())
    count = len(findings)
    print(f"{count} finding{'s' if count != 1 else ''}" if findings else "no findings")
    return 1 if findings else 0


def add_lint_command(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register the `lint` subcommand on the CLI's subparsers."""
    lint = commands.add_parser(
        "lint", help="lint revision files for table copies, data loss and locking (no database)"
    )
    lint.add_argument(
        "paths", nargs="*", help="revision files or folders (default: alembic/versions)"
    )
    lint.set_defaults(run=_lint)
