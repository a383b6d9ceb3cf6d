"""A migration linter: flags revision steps that lock, copy or lose data before they ever run.

Use `lint_paths` (or `python -m app.migrate lint [paths]`); the rules are in `rules.RULES` and
in docs/migrations.md.
"""

from app.migrate.lint.check import lint_paths, lint_source
from app.migrate.lint.rules import RULES, Finding, Rule

__all__ = ["RULES", "Finding", "Rule", "lint_paths", "lint_source"]
