"""The migration linter: the project's revisions pass, each bad revision is caught, opt-outs need
a reason. Static analysis, no database: each rule is checked on the dialect(s) it applies to."""

import textwrap
from pathlib import Path

import pytest

from app.migrate.lint import RULES, lint_paths, lint_source
from app.migrate.lint.check import Schema
from app.migrate.lint.coltypes import ColumnType, copy_reason
from app.migrate.lint.rules import MYSQL, SQLITE
from tests.support.alembic import run_module

VERSIONS = Path(__file__).resolve().parents[2] / "alembic" / "versions"

HEADER = '''"""a revision under test"""
import sqlalchemy as sa
from alembic import op

from app.backend import is_mysql
from app.migrate.archive import archive_columns, archive_table, refuse_data_loss

revision = "0009"
down_revision = "0002"
'''


def lint(body: str) -> list[tuple[str, frozenset[str]]]:
    """The findings of a revision that follows the project's own (whose column types it knows)."""
    schema: Schema = {}
    assert lint_paths([VERSIONS], schema) == []
    findings = lint_source(HEADER + textwrap.dedent(body), "bad.py", schema)
    return [(f.code, f.dialects) for f in findings]


def codes(body: str) -> set[str]:
    return {code for code, _ in lint(body)}


def test_the_projects_own_revisions_pass() -> None:
    """Run by `make test`: a revision that breaks a rule without a reasoned opt-out fails it."""
    findings = lint_paths([VERSIONS])
    assert not findings, "\n".join(f.format() for f in findings)


# --- one bad revision per rule, and the safe way beside it ------------------------------------

BAD = {
    "table-copy": """
        def upgrade():
            op.execute("ALTER TABLE user_list MODIFY email VARCHAR(100) NULL")
    """,
    "not-null-without-default": """
        def upgrade():
            op.add_column("user_list", sa.Column("age", sa.Integer(), nullable=False))
    """,
    "drop-without-archive": """
        def downgrade():
            op.drop_column("user_list", "email")
    """,
    "rename": """
        def upgrade():
            op.alter_column("user_list", "email", new_column_name="mail")
    """,
    "index-not-online": """
        def upgrade():
            op.create_index("ix_user_list_email", "user_list", ["email"])
    """,
    "multiple-ddl": """
        def upgrade():
            op.execute("ALTER TABLE user_list ADD COLUMN a INT NULL, ALGORITHM=INSTANT")
            op.execute("ALTER TABLE user_list ADD COLUMN b INT NULL, ALGORITHM=INSTANT")
    """,
    "unbatched-backfill": """
        def upgrade():
            op.execute("UPDATE user_list SET email = LOWER(email)")
    """,
}

GOOD = {
    "table-copy": """
        def upgrade():
            op.execute("ALTER TABLE user_list MODIFY email VARCHAR(40) NULL, ALGORITHM=INPLACE")
    """,
    "not-null-without-default": """
        def upgrade():
            op.add_column(
                "user_list", sa.Column("age", sa.Integer(), nullable=False, server_default="0")
            )
    """,
    "drop-without-archive": """
        def downgrade():
            archive_columns(revision, "user_list", ["email"])
            op.drop_column("user_list", "email")
    """,
    "rename": """
        def upgrade():
            op.add_column("user_list", sa.Column("mail", sa.String(12), nullable=True))
    """,
    "index-not-online": """
        def upgrade():
            if is_mysql(op.get_context().dialect):
                op.execute(
                    "CREATE INDEX ix_user_list_email ON user_list (email) "
                    "ALGORITHM=INPLACE LOCK=NONE"
                )
            else:
                op.create_index("ix_user_list_email", "user_list", ["email"])
    """,
    "multiple-ddl": """
        def upgrade():
            op.execute("ALTER TABLE user_list ADD COLUMN a INT NULL, ADD COLUMN b INT NULL")
    """,
    "unbatched-backfill": """
        def upgrade():
            op.execute("UPDATE user_list SET email = LOWER(email) WHERE id > :last LIMIT 1000")
    """,
}


@pytest.mark.parametrize("rule", sorted(BAD))
def test_each_rule_catches_its_bad_revision(rule: str) -> None:
    assert rule in codes(BAD[rule])


@pytest.mark.parametrize("rule", sorted(GOOD))
def test_the_safe_way_passes(rule: str) -> None:
    assert lint(GOOD[rule]) == []


def test_every_rule_has_a_bad_example_and_a_message_saying_the_safe_way() -> None:
    meta = {code for code, rule in RULES.items() if not rule.can_opt_out}
    assert set(BAD) == set(RULES) - meta
    assert all(rule.safe_way and rule.problem for rule in RULES.values())


# --- table copies: the cases MariaDB's INSTANT/INPLACE rules name ------------------------------


@pytest.mark.parametrize(
    ("statement", "copies"),
    [
        ("MODIFY email VARCHAR(12) NULL", False),  # unchanged
        ("MODIFY email VARCHAR(63) NULL", False),  # 252 bytes in utf8mb4: same 1-byte prefix
        ("MODIFY email VARCHAR(64) NULL", True),  # 256 bytes: the prefix grows to 2 bytes
        ("MODIFY email VARCHAR(100) CHARACTER SET latin1 NULL", True),  # charset change
        ("MODIFY email VARCHAR(8) NULL", True),  # narrowing
        ("MODIFY email TEXT NULL", True),  # another type
        ("CONVERT TO CHARACTER SET utf8mb3", True),
        ("FORCE", True),
        ("ENGINE=InnoDB", True),
        ("ADD COLUMN n INT NULL, ALGORITHM=COPY", True),
        ("ADD PRIMARY KEY (email)", True),
        ("ADD COLUMN n INT NULL", False),
        ("ADD COLUMN s INT AS (id * 2) STORED", True),
    ],
)
def test_alters_that_copy_the_table_on_mysql(statement: str, copies: bool) -> None:
    found = lint(f"""
        def upgrade():
            op.execute("ALTER TABLE user_list {statement}")
    """)
    assert (("table-copy", frozenset({MYSQL})) in found) is copies, found


def test_varchar_growth_counts_bytes_per_character_set() -> None:
    latin1 = ColumnType("varchar", 200, "latin1")
    assert copy_reason(latin1, ColumnType("varchar", 255, "latin1")) is None
    assert copy_reason(latin1, ColumnType("varchar", 256, "latin1")) is not None
    utf8mb4 = ColumnType("varchar", 10)
    assert copy_reason(utf8mb4, ColumnType("varchar", 63)) is None
    assert "255-byte" in (copy_reason(utf8mb4, ColumnType("varchar", 64)) or "")
    # Already past the boundary, growth stays in place.
    assert copy_reason(ColumnType("varchar", 100), ColumnType("varchar", 500)) is None


def test_alter_column_type_uses_existing_type_or_the_earlier_revisions() -> None:
    grows = """
        def upgrade():
            op.alter_column("user_list", "email", type_=sa.String(100), existing_type=sa.String(12))
    """
    assert ("table-copy", frozenset({MYSQL})) in lint(grows)  # 48 bytes to 400
    assert ("table-copy", frozenset({SQLITE})) in lint(grows)  # no ALTER COLUMN at all
    # Without existing_type the linter reads the type 0002 gave email from the revisions.
    findings = lint_paths([VERSIONS, _file(grows)])
    copy = [f for f in findings if f.code == "table-copy" and MYSQL in f.dialects]
    assert copy and "VARCHAR(12)" in copy[0].detail and "255-byte" in copy[0].detail


def test_a_narrowing_integer_copies() -> None:
    narrow = """
        def upgrade():
            op.alter_column("user_list", "id", type_=sa.SmallInteger(), existing_type=sa.Integer())
    """
    assert "table-copy" in codes(narrow)


def _file(body: str, directory: Path | None = None) -> Path:
    folder = directory or Path(__import__("tempfile").mkdtemp())
    path = folder / "0009_under_test.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return path


# --- dialect awareness ----------------------------------------------------------------------


def test_branches_for_one_dialect_are_linted_for_that_dialect_only() -> None:
    found = lint("""
        def upgrade():
            if is_mysql(op.get_context().dialect):
                op.execute("ALTER TABLE user_list ADD COLUMN a INT NULL")
            else:
                op.create_index("ix_user_list_email", "user_list", ["email"])
                op.add_column("user_list", sa.Column("a", sa.Integer(), nullable=True))
    """)
    # Two DDL statements, but only on SQLite, where the whole run is one transaction.
    assert found == []


def test_sqlite_cannot_alter_a_column_in_place() -> None:
    found = lint("""
        def upgrade():
            with op.batch_alter_table("user_list") as batch_op:
                batch_op.alter_column("email", existing_type=sa.String(12), nullable=True)
    """)
    assert found == [("table-copy", frozenset({SQLITE}))]


def test_not_null_on_an_existing_column_is_flagged_on_both() -> None:
    found = lint("""
        def upgrade():
            op.execute("ALTER TABLE user_list ADD COLUMN age INT NOT NULL")
    """)
    assert ("not-null-without-default", frozenset({MYSQL, SQLITE})) in found


def test_drops_count_the_archive_only_before_them_and_for_that_column() -> None:
    assert "drop-without-archive" in codes("""
        def downgrade():
            op.drop_column("user_list", "email")
            archive_columns(revision, "user_list", ["email"])
    """)
    assert "drop-without-archive" in codes("""
        def downgrade():
            archive_columns(revision, "user_list", ["username"])
            op.execute("ALTER TABLE user_list DROP COLUMN email")
    """)
    assert "drop-without-archive" in codes("""
        def downgrade():
            op.execute("DROP TABLE user_list")
    """)
    assert "drop-without-archive" in codes("""
        def downgrade():
            op.execute("TRUNCATE TABLE user_list")
    """)
    assert (
        codes("""
        def downgrade():
            archive_table(revision, "user_list")
            op.drop_table("user_list")
    """)
        == set()
    )
    assert (
        codes("""
        def downgrade():
            refuse_data_loss(revision, "the column held nothing worth keeping")
            op.drop_column("user_list", "email")
    """)
        == set()
    )


def test_helpers_of_the_revision_are_read_where_they_are_called() -> None:
    found = codes("""
        def _drop():
            op.drop_column("user_list", "email")

        def downgrade():
            _drop()
    """)
    assert "drop-without-archive" in found


def test_renames_in_sql_and_in_op_calls() -> None:
    for statement in (
        'op.execute("ALTER TABLE user_list RENAME COLUMN email TO mail")',
        'op.execute("ALTER TABLE user_list CHANGE email mail VARCHAR(12)")',
        'op.execute("RENAME TABLE user_list TO users")',
        'op.rename_table("user_list", "users")',
    ):
        assert "rename" in codes(f"def upgrade():\n    {statement}\n"), statement


def test_unique_constraints_and_alter_add_index_need_an_online_build() -> None:
    assert "index-not-online" in codes("""
        def upgrade():
            op.create_unique_constraint("uq_user_list_email", "user_list", ["email"])
    """)
    assert "index-not-online" in codes("""
        def upgrade():
            op.execute("ALTER TABLE user_list ADD UNIQUE INDEX ix (email), ALGORITHM=INPLACE")
    """)
    # A table created in the same step is empty: its indexes need no online build.
    assert "index-not-online" not in codes("""
        def upgrade():
            op.create_table("t", sa.Column("id", sa.Integer(), primary_key=True))
            op.create_index("ix_t_id", "t", ["id"])
    """)


def test_whole_table_updates_without_a_key_range_are_unbatched() -> None:
    assert "unbatched-backfill" in codes("""
        def upgrade():
            op.execute("UPDATE user_list SET email = NULL WHERE email = ''")
    """)
    assert "unbatched-backfill" in codes("""
        def upgrade():
            op.execute(sa.text("DELETE FROM user_list"))
    """)


# --- opt-outs -------------------------------------------------------------------------------


def test_an_opt_out_with_a_reason_silences_its_rule_on_its_statement() -> None:
    assert (
        lint("""
        def downgrade():
            # lint: allow drop-without-archive because the column is derived from username
            op.drop_column("user_list", "email")
    """)
        == []
    )
    assert (
        lint("""
        def downgrade():
            op.drop_column("users", "k")  # lint: allow drop-without-archive because k is derived
    """)
        == []
    )


def test_an_opt_out_covers_only_the_statement_it_names() -> None:
    found = codes("""
        def downgrade():
            # lint: allow drop-without-archive because the column is derived from username
            op.drop_column("user_list", "username_key")
            op.drop_column("user_list", "email")
    """)
    assert "drop-without-archive" in found


def test_an_opt_out_on_a_def_covers_the_function() -> None:
    assert (
        lint("""
        # lint: allow multiple-ddl because each step checks whether it already ran
        def upgrade():
            op.execute("ALTER TABLE user_list ADD COLUMN a INT NULL")
            op.execute("ALTER TABLE user_list ADD COLUMN b INT NULL")
    """)
        == []
    )


@pytest.mark.parametrize(
    "comment",
    [
        "# lint: allow drop-without-archive",
        "# lint: allow drop-without-archive because",
        "# lint: allow drop-without-archive because ok",
        "# lint: drop-without-archive because the column is derived",
    ],
)
def test_an_opt_out_without_a_reason_is_itself_an_error(comment: str) -> None:
    found = codes(f"""
        def downgrade():
            {comment}
            op.drop_column("user_list", "email")
    """)
    assert {"opt-out-without-reason", "drop-without-archive"} <= found


def test_opt_outs_of_unknown_or_meta_rules_and_unused_ones_are_errors() -> None:
    assert "unknown-rule" in codes("""
        def upgrade():
            op.execute("SELECT 1")  # lint: allow no-such-rule because it does not exist at all
    """)
    assert "unused-opt-out" in codes("""
        def upgrade():
            op.execute("SELECT 1")  # lint: allow table-copy because nothing is copied here at all
    """)


def test_a_file_that_does_not_parse_is_a_finding() -> None:
    assert codes("def upgrade(:\n    pass\n") == {"syntax-error"}


# --- the command ----------------------------------------------------------------------------


def test_the_command_exits_1_and_names_file_line_rule_and_the_safe_way(tmp_path: Path) -> None:
    bad = _file(BAD["drop-without-archive"], tmp_path)
    result = run_module("sqlite://", "app.migrate", "lint", str(bad))
    assert result.returncode == 1
    assert f"{bad}:12: drop-without-archive [mysql, sqlite]" in result.stdout
    assert "safe way: call archive_columns()" in result.stdout

    clean = run_module("sqlite://", "app.migrate", "lint")
    assert clean.returncode == 0 and "no findings" in clean.stdout


def test_statements_after_a_return_are_not_on_that_path() -> None:
    assert (
        lint("""
        def upgrade():
            if op.get_context().as_sql:
                op.execute("ALTER TABLE user_list ADD COLUMN a INT NULL")
                return
            op.execute("ALTER TABLE user_list ADD COLUMN b INT NULL")
    """)
        == []
    )
    assert "multiple-ddl" in codes("""
        def upgrade():
            if op.get_context().as_sql:
                op.execute("ALTER TABLE user_list ADD COLUMN a INT NULL")
            op.execute("ALTER TABLE user_list ADD COLUMN b INT NULL")
    """)


def test_lossless_calls_are_read_as_the_ops_they_wrap() -> None:
    """What autogenerate now writes (app.migrate.lossless) is linted, not waved through: a
    NOT NULL column with no default is still flagged; the drops count their own archive."""
    assert "not-null-without-default" in codes("""
        def upgrade():
            lossless.add_column(revision, "t", sa.Column("age", sa.Integer(), nullable=False))
    """)
    assert not codes("""
        def upgrade():
            lossless.add_column(revision, "user_list", sa.Column("nickname", sa.String(20)))

        def downgrade():
            lossless.drop_column(revision, "user_list", "nickname")
    """)
    assert not codes("""
        def downgrade():
            lossless.drop_table(revision, "user_note")
    """)
    assert "table-copy" in codes("""
        def upgrade():
            lossless.restore_table_options("user_list", mysql_collate="utf8mb4_bin")
    """)
