"""Lint revision files: read each function per dialect, apply the rules, honour the opt-outs."""

import ast
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from app.migrate.lint import coltypes
from app.migrate.lint.model import Op
from app.migrate.lint.optout import read_opt_outs
from app.migrate.lint.reader import Reader
from app.migrate.lint.rules import MYSQL, SQLITE, Finding

DIALECTS = (MYSQL, SQLITE)
# (table, column) -> type, as the revisions before the one being linted left it.
Schema = dict[tuple[str, str], coltypes.ColumnType | None]


def _functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith(("upgrade", "downgrade"))
    ]


def _check_path(
    path: list[Op], dialect: str, function: str, schema: Schema
) -> list[tuple[Op, str, str]]:
    """(statement, rule, detail) for each rule one path through `function` breaks on `dialect`."""
    found: list[tuple[Op, str, str]] = []
    created: set[str | None] = set()
    archived_tables: set[str | None] = set()
    archived_columns: dict[str | None, set[str]] = defaultdict(set)
    accepts_loss = False
    ddl: list[int] = []
    for op in path:
        found.extend((op, p.code, p.detail) for p in op.problems if dialect in p.dialects)
        accepts_loss = accepts_loss or op.accepts_loss
        if op.archives_table:
            archived_tables.add(op.table)
        archived_columns[op.table].update(op.archived_columns)
        if op.creates_table:
            created.add(op.table)
        for column in op.dropped_columns:
            kept = archived_columns[op.table] | (archived_columns[None] if op.table else set())
            if not (
                accepts_loss or column in kept or op.table in archived_tables or op.table in created
            ):
                found.append(
                    (
                        op,
                        "drop-without-archive",
                        f"drops {op.table}.{column} without archive_columns() first",
                    )
                )
        if op.drops_table and not (
            accepts_loss or op.table in archived_tables or op.table in created
        ):
            found.append(
                (
                    op,
                    "drop-without-archive",
                    f"drops every row of {op.table} without archive_table() first",
                )
            )
        if dialect != MYSQL:
            continue
        if op.adds_index and not op.index_online and op.table not in created:
            found.append(
                (
                    op,
                    "index-not-online",
                    f"index on {op.table or 'a table'} without ALGORITHM=INPLACE, LOCK=NONE",
                )
            )
        for change in op.type_changes:
            old = change.old or schema.get((op.table or "", change.column))
            if old is None and not op.online_algorithm:
                found.append(
                    (
                        op,
                        "table-copy",
                        f"changes the type of {change.column} to {change.new} from a type the "
                        "linter cannot tell (pass existing_type=)",
                    )
                )
            elif old is not None and (reason := coltypes.copy_reason(old, change.new)):
                found.append((op, "table-copy", f"{op.table}.{change.column}: {reason}"))
        if op.ddl:
            ddl.append(op.line)
            if len(ddl) > 1:
                found.append(
                    (
                        op,
                        "multiple-ddl",
                        f"another DDL statement in {function}() after line {ddl[0]}; each "
                        "commits on its own",
                    )
                )
    return found


def _apply(schema: Schema, paths: list[list[Op]]) -> None:
    """What an upgrade leaves: columns added, retyped or dropped (the first path that does)."""
    for op in paths[0] if paths else []:
        table = op.table or ""
        for column, type_ in op.added_columns.items():
            schema[(table, column)] = type_
        for change in op.type_changes:
            schema[(table, change.column)] = change.new
        for column in op.dropped_columns:
            schema.pop((table, column), None)


def lint_source(
    source: str, path: str = "<revision>", schema: Schema | None = None
) -> list[Finding]:
    """Every finding in one revision file. `schema` (updated in place) carries column types."""
    schema = {} if schema is None else schema
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return [Finding(path, exc.lineno or 1, "syntax-error", str(exc.msg))]
    opt_outs, findings = read_opt_outs(source, tree, path)
    # (line, rule, detail, call sites) -> the dialects it was found on
    raw: dict[tuple[int, str, str, tuple[int, ...]], set[str]] = defaultdict(set)
    after_upgrade: Schema = dict(schema)
    for dialect in DIALECTS:
        reader = Reader(tree, dialect)
        for function in _functions(tree):
            paths = reader.paths(function)
            start = after_upgrade if function.name.startswith("downgrade") else schema
            for one_path in paths:
                for op, code, detail in _check_path(one_path, dialect, function.name, start):
                    raw[(op.line, code, detail, op.call_sites)].add(dialect)
            if dialect == MYSQL and function.name == "upgrade":
                _apply(after_upgrade, paths)
    for (line, code, detail, sites), dialects in sorted(raw.items()):
        via = f" (called from line {', '.join(map(str, sites))})" if sites else ""
        finding = Finding(path, line, code, detail + via, frozenset(dialects), sites)
        covering = [o for o in opt_outs if o.covers(finding)]
        for opt_out in covering:
            opt_out.used.add(code)
        if not covering:
            findings.append(finding)
    for opt_out in opt_outs:
        for code in set(opt_out.codes) - opt_out.used:
            findings.append(
                Finding(
                    path, opt_out.line, "unused-opt-out", f"`allow {code}` silences nothing here"
                )
            )
    schema.clear()
    schema.update(after_upgrade)
    return sorted(findings, key=lambda f: (f.line, f.code))


def _revision_ids(source: str) -> tuple[str | None, str | None]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None, None
    values: dict[str, str | None] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
            values[target.id] = value.value if isinstance(value.value, str) else None
    return values.get("revision"), values.get("down_revision")


def _in_revision_order(files: Sequence[Path]) -> list[Path]:
    """Files from base to head along down_revision, so earlier column types are known."""
    ids = {f: _revision_ids(f.read_text(encoding="utf-8")) for f in files}
    by_parent: dict[str | None, list[Path]] = defaultdict(list)
    known = {revision for revision, _ in ids.values()}
    for file, (_revision, parent) in ids.items():
        by_parent[parent if parent in known else None].append(file)
    ordered: list[Path] = []
    queue = sorted(by_parent[None])
    while queue:
        file = queue.pop(0)
        ordered.append(file)
        queue.extend(sorted(by_parent.get(ids[file][0], [])))
    return ordered + sorted(set(files) - set(ordered))


def revision_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files.extend(p for p in sorted(entry.glob("*.py")) if p.name != "__init__.py")
        else:
            files.append(entry)
    return files


def lint_paths(paths: Iterable[str | Path], schema: Schema | None = None) -> list[Finding]:
    """Lint revision files and folders (their *.py), in revision order; `schema` is updated."""
    schema = {} if schema is None else schema
    findings: list[Finding] = []
    for file in _in_revision_order(revision_files(paths)):
        findings.extend(lint_source(file.read_text(encoding="utf-8"), str(file), schema))
    return findings
