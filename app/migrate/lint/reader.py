"""Read a revision function into the paths it can take on one dialect, as lists of `Op`s.

`if is_mysql(...)`/`is_sqlite(...)` (and `dialect.name == "..."`) pick the branch the dialect
takes; any other `if` may go either way, so both paths are kept. Calls to the module's own
helper functions are read in place, so a helper's statements count where it is called.
"""

import ast
from collections.abc import Iterable

from app.migrate.lint import coltypes, sql
from app.migrate.lint.model import Op, Problem, TypeChange
from app.migrate.lint.rules import BOTH, MYSQL, ONLY_MYSQL, ONLY_SQLITE, SQLITE

MAX_PATHS = 64  # revision functions are short; this only bounds a pathological file
MYSQL_NAMES = {"mysql", "mariadb"}
ARCHIVE_CALLS = {"archive_columns", "archive_table", "refuse_data_loss"}
# app.migrate.lossless: `lossless.<call>(revision, ...)` is read as the op it wraps.
LOSSLESS_CALLS = {
    "add_column",
    "drop_column",
    "create_table",
    "drop_table",
    "restore_table_options",
}
Path = list[Op]
# Ends a path that returned (or raised): the statements after it are not on that path.
RETURNED = Op(0)


def _name(node: ast.AST) -> str | None:
    """`f` of `f(...)` or `x.f(...)`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_constant(node: ast.expr | None, value: bool) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


class Reader:
    """The paths of the functions of one revision module, for one dialect."""

    def __init__(self, module: ast.Module, dialect: str) -> None:
        self.dialect = dialect
        self.functions = {n.name: n for n in module.body if isinstance(n, ast.FunctionDef)}
        self.constants: dict[str, str] = {}
        for node in module.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                node.value, ast.Constant
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        self.constants[target.id] = node.value.value

    def paths(self, function: ast.FunctionDef) -> list[Path]:
        return self._block(function.body, {}, (function.name,))

    # --- control flow -------------------------------------------------------------------
    def _block(
        self, body: Iterable[ast.stmt], batch: dict[str, str | None], stack: tuple[str, ...]
    ) -> list[Path]:
        paths: list[Path] = [[]]
        for statement in body:
            branches = self._statement(statement, batch, stack)
            extended: list[Path] = []
            for path in paths:
                if path and path[-1] is RETURNED:
                    extended.append(path)
                else:
                    extended.extend(path + branch for branch in branches)
            paths = extended[:MAX_PATHS]
        return paths

    def _statement(
        self, node: ast.stmt, batch: dict[str, str | None], stack: tuple[str, ...]
    ) -> list[Path]:
        if isinstance(node, ast.If):
            taken = self._truth(node.test)
            if taken is True:
                return self._block(node.body, batch, stack)
            if taken is False:
                return self._block(node.orelse, batch, stack)
            return self._block(node.body, batch, stack) + self._block(node.orelse, batch, stack)
        if isinstance(node, ast.With):
            inner = dict(batch)
            head: Path = []
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and _name(call.func) == "batch_alter_table":
                    table = self._str(call.args[0]) if call.args else None
                    if isinstance(item.optional_vars, ast.Name):
                        inner[item.optional_vars.id] = table
                    if self._keyword_str(call, "recreate") == "always":
                        head.append(
                            Op(
                                node.lineno,
                                table,
                                problems=[
                                    Problem(
                                        "table-copy",
                                        "batch_alter_table(recreate='always') copies the table",
                                        BOTH,
                                    )
                                ],
                            )
                        )
                else:
                    head.extend(op for path in self._expression(call, batch, stack) for op in path)
            return [head + p for p in self._block(node.body, inner, stack)]
        if isinstance(node, ast.For | ast.While | ast.AsyncFor):
            return self._block([*node.body, *node.orelse], batch, stack)
        if isinstance(node, ast.Try):
            return self._block([*node.body, *node.orelse, *node.finalbody], batch, stack)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return [[]]
        if isinstance(node, ast.Return | ast.Raise):
            return [[*path, RETURNED] for path in self._expression(node, batch, stack)]
        return self._expression(node, batch, stack)

    def _truth(self, test: ast.expr) -> bool | None:
        """Whether `test` holds on this dialect; None when it does not depend on it (or unknown)."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self._truth(test.operand)
            return None if inner is None else not inner
        if isinstance(test, ast.BoolOp):
            values = [self._truth(v) for v in test.values]
            if isinstance(test.op, ast.And):
                return (
                    False if False in values else (True if all(v is True for v in values) else None)
                )
            return True if True in values else (False if all(v is False for v in values) else None)
        if isinstance(test, ast.Call):
            name = _name(test.func)
            if name in ("is_mysql", "is_mariadb"):
                return self.dialect == MYSQL
            if name == "is_sqlite":
                return self.dialect == SQLITE
            if name == "is_postgresql":
                return False
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            right = test.comparators[0]
            names: set[str] = set()
            if isinstance(right, ast.Constant) and isinstance(right.value, str):
                names = {right.value}
            elif isinstance(right, ast.Tuple | ast.List | ast.Set):
                names = {
                    e.value
                    for e in right.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
            if names and isinstance(test.left, ast.Attribute) and test.left.attr == "name":
                ours = MYSQL_NAMES if self.dialect == MYSQL else {self.dialect}
                holds = bool(names & ours)
                if isinstance(test.ops[0], ast.NotEq | ast.NotIn):
                    return not holds
                if isinstance(test.ops[0], ast.Eq | ast.In):
                    return holds
        return None

    # --- calls -------------------------------------------------------------------------
    def _expression(
        self, node: ast.AST, batch: dict[str, str | None], stack: tuple[str, ...]
    ) -> list[Path]:
        paths: list[Path] = [[]]
        calls = sorted(
            (n for n in ast.walk(node) if isinstance(n, ast.Call)),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for call in calls:
            helper = call.func.id if isinstance(call.func, ast.Name) else None
            if helper in self.functions and helper not in stack:
                inner = [
                    [op for op in path if op is not RETURNED]  # the helper's return, not ours
                    for path in self._block(self.functions[helper].body, batch, (*stack, helper))
                ]
                for op in {id(op): op for path in inner for op in path}.values():
                    op.call_sites = (call.lineno, *op.call_sites)
                paths = [p + i for p in paths for i in inner][:MAX_PATHS]
                continue
            for op in self._call(call, batch):
                for path in paths:
                    path.append(op)
        return paths

    def _call(self, call: ast.Call, batch: dict[str, str | None]) -> list[Op]:
        name = _name(call.func)
        line = call.lineno
        if name in ARCHIVE_CALLS:
            return [self._archive(call, name)]
        if name in ("execute", "exec_driver_sql") and call.args:
            return self._execute(call.args[0], line)
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        if not isinstance(receiver, ast.Name) or name is None:
            return []
        if receiver.id == "lossless" and name in LOSSLESS_CALLS:
            return self._lossless(name, call)
        if receiver.id == "op":
            return self._operation(name, call, None, in_batch=False)
        if receiver.id in batch:
            return self._operation(name, call, batch[receiver.id], in_batch=True)
        return []

    def _lossless(self, name: str, call: ast.Call) -> list[Op]:
        """`lossless.<name>(revision, table, ...)`: the `op.<name>(table, ...)` it wraps, after
        the archive a drop makes; a column is added or dropped INSTANT on MySQL."""
        inner = ast.Call(func=call.func, args=call.args[1:], keywords=call.keywords)
        ast.copy_location(inner, call)
        table = self._str(inner.args[0]) if inner.args else None
        if name == "restore_table_options":
            rebuild = Problem("table-copy", "restore_table_options() rebuilds the table", BOTH)
            return [Op(call.lineno, table, ddl=True, problems=[rebuild])]
        ops = self._operation(name, inner, None, in_batch=False)
        for op in ops:
            op.online_algorithm = name in ("add_column", "drop_column")
        if name == "drop_column":
            column = self._str(inner.args[1]) if len(inner.args) > 1 else None
            return [Op(call.lineno, table, archived_columns=(column or "?",)), *ops]
        if name == "drop_table":
            return [Op(call.lineno, table, archives_table=True), *ops]
        return ops

    def _archive(self, call: ast.Call, name: str) -> Op:
        if name == "refuse_data_loss":
            return Op(call.lineno, None, accepts_loss=True)
        table = self._str(call.args[1]) if len(call.args) > 1 else None
        if name == "archive_table":
            return Op(call.lineno, table, archives_table=True)
        columns = self._strs(call.args[2]) if len(call.args) > 2 else []
        return Op(call.lineno, table, archived_columns=tuple(columns))

    def _execute(self, argument: ast.expr, line: int) -> list[Op]:
        text = self._str(argument)
        if text is not None:
            return sql.parse(text, line)
        chain = [_name(n.func) for n in ast.walk(argument) if isinstance(n, ast.Call)]
        verb = next((c for c in chain if c in ("update", "delete")), None)
        if verb and "where" not in chain and "limit" not in chain:
            detail = f"{verb}() with no where(): every row in one statement"
            return [Op(line, problems=[Problem("unbatched-backfill", detail, ONLY_MYSQL)])]
        return []

    def _operation(
        self, name: str, call: ast.Call, table: str | None, *, in_batch: bool
    ) -> list[Op]:
        """One `op.<name>(...)` or `batch_op.<name>(...)` call."""
        args = list(call.args)
        if not in_batch and name not in ("create_index", "create_unique_constraint",
                                         "create_foreign_key", "create_check_constraint",
                                         "create_primary_key", "drop_constraint", "drop_index",
                                         "execute", "bulk_insert"):  # fmt: skip
            table = self._str(args.pop(0)) if args else self._keyword_str(call, "table_name")
        op = Op(call.lineno, table)
        copy_on_sqlite = Problem(
            "table-copy", f"batch {name}() recreates the table on SQLite", ONLY_SQLITE
        )
        if name == "add_column" and args and isinstance(args[0], ast.Call):
            column, type_, not_null, has_default = self._column(args[0])
            op.ddl = True
            op.added_columns[column] = type_
            if not_null and not has_default:
                op.problems.append(
                    Problem(
                        "not-null-without-default",
                        f"add_column({column!r}, nullable=False) without a server_default",
                        BOTH,
                    )
                )
        elif name == "drop_column":
            op.ddl = True
            dropped = self._str(args[0]) if args else self._keyword_str(call, "column_name")
            # Not a table-copy finding on SQLite: every drop there rewrites the table (its own
            # DROP COLUMN too), so there is no safer way to point to; archiving is what matters.
            op.dropped_columns = (dropped or "?",)
        elif name == "alter_column":
            self._alter_column(op, call, args, in_batch)
        elif name == "create_table":
            op.ddl = op.creates_table = True
            for arg in args:
                if isinstance(arg, ast.Call) and _name(arg.func) == "Column":
                    column, type_, _not_null, _default = self._column(arg)
                    op.added_columns[column] = type_
        elif name == "drop_table":
            op.ddl = op.drops_table = True
        elif name == "rename_table":
            op.ddl = True
            op.problems.append(
                Problem("rename", "rename_table(): the running code still reads the old name", BOTH)
            )
        elif name in ("create_index", "create_unique_constraint"):
            op.ddl = op.adds_index = True
            op.index_online = False
            if not in_batch and len(args) > 1:
                op.table = self._str(args[1])
            if in_batch and name == "create_unique_constraint":
                op.problems.append(copy_on_sqlite)
        elif name in ("create_foreign_key", "create_check_constraint", "create_primary_key"):
            op.ddl = True
            what = name.removeprefix("create_").replace("_", " ")
            op.problems.append(
                Problem("table-copy", f"adding a {what} copies or rebuilds the table", ONLY_MYSQL)
            )
            if in_batch:
                op.problems.append(copy_on_sqlite)
        elif name in ("drop_index", "drop_constraint"):
            op.ddl = True
            if in_batch and name == "drop_constraint":
                op.problems.append(copy_on_sqlite)
        elif name == "execute" and args:
            return self._execute(args[0], call.lineno)
        else:
            return []
        return [op]

    def _alter_column(self, op: Op, call: ast.Call, args: list[ast.expr], in_batch: bool) -> None:
        op.ddl = True
        column = (self._str(args[0]) if args else self._keyword_str(call, "column_name")) or "?"
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        if "new_column_name" in keywords:
            new = self._str(keywords["new_column_name"]) or "?"
            op.problems.append(Problem("rename", f"alter_column renames {column} to {new}", BOTH))
        not_null = _is_constant(keywords.get("nullable"), False)
        if not_null:
            op.problems.append(
                Problem(
                    "not-null-without-default",
                    f"alter_column({column!r}, nullable=False) on an existing column",
                    BOTH,
                )
            )
        if "type_" in keywords:
            new_type = self._type(keywords["type_"])
            old_type = (
                self._type(keywords["existing_type"]) if "existing_type" in keywords else None
            )
            if new_type is not None:
                op.type_changes.append(TypeChange(column, new_type, old_type, not_null))
        op.problems.append(
            Problem(
                "table-copy",
                f"SQLite cannot alter column {column} in place: batch mode copies the table",
                ONLY_SQLITE,
            )
        )

    def _column(self, call: ast.Call) -> tuple[str, coltypes.ColumnType | None, bool, bool]:
        """(name, type, NOT NULL, has a server default) of `sa.Column(...)`."""
        name = (self._str(call.args[0]) if call.args else None) or "?"
        type_ = self._type(call.args[1]) if len(call.args) > 1 else None
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        not_null = _is_constant(keywords.get("nullable"), False)
        primary = _is_constant(keywords.get("primary_key"), True)
        default = keywords.get("server_default")
        has_default = default is not None and not (
            isinstance(default, ast.Constant) and default.value is None
        )
        return name, type_, not_null and not primary, has_default

    def _type(self, node: ast.expr) -> coltypes.ColumnType | None:
        if isinstance(node, ast.Name | ast.Attribute):
            return coltypes.from_name(_name(node) or "", None)
        if not isinstance(node, ast.Call) or _name(node.func) is None:
            return None
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        size_node = node.args[0] if node.args else keywords.get("length")
        size = (
            size_node.value
            if isinstance(size_node, ast.Constant) and isinstance(size_node.value, int)
            else None
        )
        charset = self._str(keywords["charset"]) if "charset" in keywords else None
        return coltypes.from_name(_name(node.func) or "", size, charset)

    # --- literals ------------------------------------------------------------------------
    def _str(self, node: ast.expr) -> str | None:
        """The string `node` stands for; f-string holes become `{}`; None if unknown."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.JoinedStr):
            return "".join(
                str(v.value) if isinstance(v, ast.Constant) else " {} " for v in node.values
            )
        if isinstance(node, ast.Call) and _name(node.func) == "text" and node.args:
            return self._str(node.args[0])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self._str(node.left), self._str(node.right)
            return None if left is None or right is None else left + right
        return None

    def _strs(self, node: ast.expr) -> list[str]:
        if isinstance(node, ast.List | ast.Tuple):
            return [s for e in node.elts if (s := self._str(e)) is not None]
        single = self._str(node)
        return [single] if single is not None else []

    def _keyword_str(self, call: ast.Call, name: str) -> str | None:
        for keyword in call.keywords:
            if keyword.arg == name:
                return self._str(keyword.value)
        return None
