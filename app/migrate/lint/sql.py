"""SQL text in `op.execute(...)` read into `Op`s: enough of MySQL's ALTER grammar for the rules.

Unknown parts of an f-string arrive as `{}` and match nothing. This is a reader of the common
statement shapes, not a SQL parser: what it does not recognise it leaves alone.
"""

import re

from app.migrate.config import is_archive_table
from app.migrate.lint import coltypes
from app.migrate.lint.model import Op, Problem, TypeChange
from app.migrate.lint.rules import BOTH, ONLY_MYSQL

FLAGS = re.IGNORECASE | re.DOTALL
NAME = r"[`\"]?(?:\w+[`\"]?\.[`\"]?)?(\w+|\{\})[`\"]?"
ALTER = re.compile(
    rf"^ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?{NAME}\s*(?P<rest>.*)$",
    FLAGS,
)
CREATE_INDEX = re.compile(
    rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?{NAME}\s+ON\s+{NAME}",
    FLAGS,
)
CREATE_TABLE = re.compile(
    rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{NAME}",
    FLAGS,
)
DROP_TABLE = re.compile(
    r"^DROP\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(?P<names>.*)$", FLAGS
)
RENAME_TABLE = re.compile(r"^RENAME\s+TABLE\b", FLAGS)
TRUNCATE = re.compile(rf"^TRUNCATE\s+(?:TABLE\s+)?{NAME}", FLAGS)
DDL = re.compile(r"^(ALTER|CREATE|DROP|RENAME|TRUNCATE)\b", FLAGS)
WRITE = re.compile(
    rf"^(?:UPDATE\s+(?:LOW_PRIORITY\s+)?(?:IGNORE\s+)?|DELETE\s+FROM\s+){NAME}", FLAGS
)
ALGORITHM = re.compile(r"\bALGORITHM\s*=?\s*(\w+)", FLAGS)
LOCK = re.compile(r"\bLOCK\s*=?\s*(\w+)", FLAGS)
PARAMETER = re.compile(r":\w+|%\(\w+\)s|%s|\?|\{\}")
ONLINE_INDEX_ALGORITHMS = {"INPLACE", "NOCOPY"}
INDEX_WORDS = ("INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL", "CONSTRAINT", "PRIMARY", "FOREIGN")
REBUILDS = re.compile(r"^(?:FORCE|ENGINE|ROW_FORMAT|ORDER\s+BY|KEY_BLOCK_SIZE)\b", FLAGS)


def statements(sql: str) -> list[str]:
    """`sql` split at top-level semicolons, white space folded, blank statements dropped."""
    return [" ".join(part.split()) for part in _split_outside(sql, ";")]


def split_top_level(text: str) -> list[str]:
    """Comma-separated clauses, ignoring commas inside parentheses and quotes."""
    return [part.strip() for part in _split_outside(text, ",")]


def _split_outside(text: str, separator: str) -> list[str]:
    """The non-blank pieces of `text` between `separator`s outside quotes and parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == separator and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _table(name: str) -> str | None:
    return None if name == "{}" else name


def parse(sql: str, line: int) -> list[Op]:
    return [op for statement in statements(sql) if (op := _statement(statement, line))]


def _statement(sql: str, line: int) -> Op | None:
    if found := ALTER.match(sql):
        return _alter(_table(found[1]), found["rest"], sql, line)
    if found := CREATE_INDEX.match(sql):
        op = Op(line, _table(found[2]), ddl=True, adds_index=True)
        op.index_online = _online(sql)
        return op
    if found := CREATE_TABLE.match(sql):
        table = _table(found[1])
        return Op(line, table, ddl=not is_archive_table(table or ""), creates_table=True)
    if found := DROP_TABLE.match(sql):
        names = [n.strip(' `"') for n in found["names"].split(",")]
        real = [n for n in names if n != "{}" and not is_archive_table(n)]
        if not real:
            return Op(line, None)  # an archive's own bookkeeping, not the service's data
        return Op(line, real[0], ddl=True, drops_table=True)
    if RENAME_TABLE.match(sql):
        problem = Problem("rename", "RENAME TABLE: the running code still reads the old name", BOTH)
        return Op(line, None, ddl=True, problems=[problem])
    if found := TRUNCATE.match(sql):
        return Op(line, _table(found[1]), ddl=True, drops_table=True)
    if found := WRITE.match(sql):
        return _write(_table(found[1]), sql, line)
    if DDL.match(sql):
        return Op(line, None, ddl=True)
    return None


def _online(sql: str) -> bool:
    algorithm, lock = ALGORITHM.search(sql), LOCK.search(sql)
    return bool(
        algorithm
        and algorithm[1].upper() in ONLINE_INDEX_ALGORITHMS
        and lock
        and lock[1].upper() == "NONE"
    )


def _write(table: str | None, sql: str, line: int) -> Op:
    op = Op(line, table)
    where = re.search(r"\bWHERE\b(?P<cond>.*?)(?:\bORDER\s+BY\b|\bLIMIT\b|$)", sql, FLAGS)
    bounded = re.search(r"\bLIMIT\b", sql, FLAGS) or (
        where
        and (PARAMETER.search(where["cond"]) or re.search(r"\bBETWEEN\b", where["cond"], FLAGS))
    )
    if not bounded:
        verb = sql.split()[0].upper()
        scope = "with no WHERE" if not where else "with a WHERE bounded by no key range or LIMIT"
        op.problems.append(
            Problem("unbatched-backfill", f"{verb} of {table or 'a table'} {scope}", ONLY_MYSQL)
        )
    return op


def _alter(table: str | None, rest: str, sql: str, line: int) -> Op:
    op = Op(line, table, ddl=True)
    algorithm = ALGORITHM.search(sql)
    op.online_algorithm = bool(
        algorithm and algorithm[1].upper() in ("INSTANT", "INPLACE", "NOCOPY")
    )
    if algorithm and algorithm[1].upper() == "COPY":
        op.problems.append(Problem("table-copy", "ALGORITHM=COPY asks for a copy", ONLY_MYSQL))
    dropped: list[str] = []
    for clause in split_top_level(rest):
        words = clause.split()
        head = words[0].upper()
        if head in ("ALGORITHM", "LOCK") or head.startswith(("ALGORITHM=", "LOCK=")):
            continue
        if head == "ADD":
            _add(op, words[1:], clause, sql)
        elif head == "DROP":
            if column := _dropped_column(words[1:]):
                dropped.append(column)
            elif len(words) > 2 and words[1].upper() == "PRIMARY":
                op.problems.append(
                    Problem("table-copy", "DROP PRIMARY KEY rebuilds the table", ONLY_MYSQL)
                )
        elif head in ("MODIFY", "CHANGE"):
            _modify(op, head, words[1:])
        elif head == "RENAME":
            target = words[1].upper() if len(words) > 1 else ""
            if target not in ("INDEX", "KEY"):
                what = "column" if target == "COLUMN" else "table"
                op.problems.append(Problem("rename", f"RENAME of a {what}", BOTH))
        elif head == "CONVERT":
            op.problems.append(
                Problem("table-copy", "CONVERT TO CHARACTER SET rewrites every row", ONLY_MYSQL)
            )
        elif REBUILDS.match(clause):
            op.problems.append(Problem("table-copy", f"{head} rebuilds the table", ONLY_MYSQL))
    op.dropped_columns = tuple(dropped)
    return op


def _dropped_column(words: list[str]) -> str | None:
    if not words or words[0].upper() in (*INDEX_WORDS, "CHECK", "PARTITION", "PERIOD", "SYSTEM"):
        return None
    if words[0].upper() == "COLUMN":
        words = words[1:]
    if len(words) > 2 and words[0].upper() == "IF" and words[1].upper() == "EXISTS":
        words = words[2:]
    return words[0].strip('`"') if words else None


def _add(op: Op, words: list[str], clause: str, sql: str) -> None:
    if not words:
        return
    first = words[0].upper()
    if first in INDEX_WORDS:
        if first == "PRIMARY":
            op.problems.append(
                Problem("table-copy", "ADD PRIMARY KEY rebuilds the table", ONLY_MYSQL)
            )
        elif first == "FOREIGN" or "FOREIGN KEY" in clause.upper():
            op.problems.append(
                Problem(
                    "table-copy",
                    "ADD FOREIGN KEY copies the table unless foreign_key_checks=0",
                    ONLY_MYSQL,
                )
            )
        else:
            op.adds_index = True
            op.index_online = op.index_online and _online(sql)
        return
    if first == "COLUMN":
        words = words[1:]
    if len(words) > 3 and words[0].upper() == "IF":
        words = words[3:]
    if len(words) < 2:
        return
    column, definition = words[0].strip('`"'), " ".join(words[1:])
    upper = definition.upper()
    op.added_columns[column] = coltypes.from_sql(definition)
    if "NOT NULL" in upper and "DEFAULT" not in upper and "AUTO_INCREMENT" not in upper:
        op.problems.append(
            Problem(
                "not-null-without-default", f"ADD COLUMN {column} NOT NULL without a DEFAULT", BOTH
            )
        )
    if "AUTO_INCREMENT" in upper or re.search(r"\b(STORED|PERSISTENT)\b", upper):
        op.problems.append(
            Problem(
                "table-copy",
                f"ADD COLUMN {column} fills every row (stored/auto_increment)",
                ONLY_MYSQL,
            )
        )


def _modify(op: Op, head: str, words: list[str]) -> None:
    if words and words[0].upper() == "COLUMN":
        words = words[1:]
    if len(words) > 2 and words[0].upper() == "IF" and words[1].upper() == "EXISTS":
        words = words[2:]
    if head == "CHANGE":
        if len(words) < 3:
            return
        old_name, new_name = words[0].strip('`"'), words[1].strip('`"')
        if old_name.lower() != new_name.lower():
            op.problems.append(Problem("rename", f"CHANGE renames {old_name} to {new_name}", BOTH))
        words = [old_name, *words[2:]]
    if len(words) < 2:
        return
    definition = " ".join(words[1:])
    new_type = coltypes.from_sql(definition)
    not_null = "NOT NULL" in definition.upper()
    if new_type is not None:
        op.type_changes.append(TypeChange(words[0].strip('`"'), new_type, None, not_null))
