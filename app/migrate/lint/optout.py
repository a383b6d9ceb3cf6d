"""In-file opt-outs: `# lint: allow <rule>[, <rule>] because <reason>`, a reason required.

A comment on a line of its own covers the statement that follows it (a whole function when it
sits on or above its `def`); at the end of a line, the statement that line belongs to.
"""

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field

from app.migrate.lint.rules import RULES, Finding

OPT_OUT = re.compile(
    r"#\s*lint:\s*allow\s+(?P<codes>[\w-]+(?:\s*,\s*[\w-]+)*)(?:\s+because\b(?P<reason>.*))?$"
)
MIN_REASON = 10  # characters: "because ok" says nothing


@dataclass
class OptOut:
    line: int
    codes: tuple[str, ...]
    first: int  # the lines it covers, inclusive
    last: int
    used: set[str] = field(default_factory=set)

    def covers(self, finding: Finding) -> bool:
        lines = (finding.line, *finding.call_sites)
        return finding.code in self.codes and any(self.first <= n <= self.last for n in lines)


def read_opt_outs(source: str, tree: ast.Module, path: str) -> tuple[list[OptOut], list[Finding]]:
    """The file's opt-outs, and the findings about malformed ones."""
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    opt_outs, problems = [], []
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        found = OPT_OUT.search(token.string)
        if not found:
            if re.search(r"#\s*lint:", token.string):
                detail = "malformed opt-out: write `# lint: allow <rule> because <reason>`"
                problems.append(Finding(path, token.start[0], "opt-out-without-reason", detail))
            continue
        line = token.start[0]
        codes = tuple(c.strip() for c in found["codes"].split(","))
        reason = (found["reason"] or "").strip()
        if len(reason) < MIN_REASON:
            detail = f"opt-out of {', '.join(codes)} without a reason (`because ...`)"
            problems.append(Finding(path, line, "opt-out-without-reason", detail))
            continue
        unknown = [c for c in codes if c not in RULES or not RULES[c].can_opt_out]
        for code in unknown:
            problems.append(Finding(path, line, "unknown-rule", f"no rule {code!r} to opt out of"))
        first, last = _span(statements, line, own_line=token.line.strip().startswith("#"))
        opt_outs.append(OptOut(line, codes, first, last))
    return opt_outs, problems


def _span(statements: list[ast.stmt], line: int, *, own_line: bool) -> tuple[int, int]:
    if own_line:
        following = [s for s in statements if s.lineno > line]
        if not following:
            return line, line
        first_line = min(s.lineno for s in following)
        # The outermost statement starting there (a def rather than its first statement).
        node = max((s for s in following if s.lineno == first_line), key=_end)
        return line, _end(node)
    containing = [s for s in statements if s.lineno <= line <= _end(s)]
    if not containing:
        return line, line
    node = min(containing, key=lambda s: _end(s) - s.lineno)  # the innermost
    return node.lineno, _end(node)


def _end(node: ast.stmt) -> int:
    return node.end_lineno or node.lineno
