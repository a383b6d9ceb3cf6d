"""The lint rules: a code to opt out by, what goes wrong, and the safe way to do it instead."""

from dataclasses import dataclass

MYSQL = "mysql"
SQLITE = "sqlite"
BOTH = frozenset({MYSQL, SQLITE})
ONLY_MYSQL = frozenset({MYSQL})
ONLY_SQLITE = frozenset({SQLITE})


@dataclass(frozen=True)
class Rule:
    code: str
    problem: str
    safe_way: str
    # Meta rules (about the opt-outs themselves) cannot be opted out of.
    can_opt_out: bool = True


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "table-copy",
            "this ALTER copies or rebuilds the table: writes are blocked (MySQL/MariaDB) or the "
            "database is locked (SQLite) for as long as the copy takes",
            "add a new column, backfill it in batches, switch reads to it, drop the old one in "
            "a later release (expand/contract); grow a VARCHAR only within the same length "
            "prefix (up to 255 bytes, 63 utf8mb4 characters, or beyond 255 from the start); "
            "on SQLite, alter in place only by adding columns",
        ),
        Rule(
            "not-null-without-default",
            "NOT NULL on a column without a default: existing rows have no value (SQLite "
            "refuses, MySQL fills in '' or 0, MariaDB rebuilds the table to enforce it)",
            "add the column nullable or with a server_default, backfill in batches, and enforce "
            "the rule in the application (or add NOT NULL in its own, later revision)",
        ),
        Rule(
            "drop-without-archive",
            "a column, table or its rows are dropped without being archived: the downgrade "
            "cannot bring the data back",
            "call archive_columns()/archive_table() before the drop in the same function "
            "(app/migrate/archive.py), or refuse_data_loss() if the step is knowingly lossy",
        ),
        Rule(
            "rename",
            "a rename of a column or table the running code still reads: the old release "
            "fails on every query of that name between the migration and the deploy",
            "add the new column, write both, backfill, switch reads, then drop the old column "
            "in a later release (expand/contract)",
        ),
        Rule(
            "index-not-online",
            "an index built without ALGORITHM=INPLACE, LOCK=NONE on MySQL/MariaDB may lock "
            "writes for the whole build (op.create_index cannot say so)",
            "op.execute('CREATE INDEX ix ON t (c) ALGORITHM=INPLACE LOCK=NONE') on MySQL; "
            "op.create_index elsewhere",
        ),
        Rule(
            "multiple-ddl",
            "more than one DDL statement in one revision function on MySQL/MariaDB: each "
            "commits on its own, so a failure half-way leaves a schema no revision describes",
            "one DDL statement per revision, or make every step idempotent (skip what a "
            "previous, interrupted run already did) and say so in the opt-out",
        ),
        Rule(
            "unbatched-backfill",
            "one UPDATE or DELETE over the whole table: it locks every row it touches until "
            "it commits, grows the undo log and stalls replicas",
            "update in batches of bounded size by key range (WHERE id > :last ... LIMIT n, or "
            "app.migrate.backfill), committing each batch",
        ),
        Rule(
            "opt-out-without-reason",
            "a `# lint: allow` comment without `because <reason>`",
            "write `# lint: allow <rule> because <why this is safe here>`",
            can_opt_out=False,
        ),
        Rule(
            "unknown-rule",
            "a `# lint: allow` comment names a rule that does not exist",
            "use one of the rule codes in docs/migrations.md",
            can_opt_out=False,
        ),
        Rule(
            "unused-opt-out",
            "a `# lint: allow` comment that silences nothing (stale after an edit?)",
            "remove it, or move it onto the statement it is meant for",
            can_opt_out=False,
        ),
        Rule(
            "syntax-error",
            "the revision file does not parse",
            "fix the file",
            can_opt_out=False,
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    code: str
    detail: str
    dialects: frozenset[str] = BOTH
    # Lines of the revision function that called the helper the finding is in: an opt-out
    # there covers it too.
    call_sites: tuple[int, ...] = ()

    def format(self) -> str:
        rule = RULES[self.code]
        where = ", ".join(sorted(self.dialects))
        return (
            f"{self.path}:{self.line}: {self.code} [{where}] {self.detail}\n"
            f"    safe way: {rule.safe_way}"
        )
