"""What the linter knows of one migration statement: an `op.*` call or one SQL statement."""

from dataclasses import dataclass, field

from app.migrate.lint.coltypes import ColumnType


@dataclass(frozen=True)
class Problem:
    """A rule broken by the statement itself, on the dialects it applies to."""

    code: str
    detail: str
    dialects: frozenset[str]


@dataclass(frozen=True)
class TypeChange:
    """A column's type set by ALTER/MODIFY; `old` None when the statement does not say."""

    column: str
    new: ColumnType
    old: ColumnType | None
    not_null: bool


@dataclass
class Op:
    line: int
    table: str | None = None
    ddl: bool = False
    creates_table: bool = False
    drops_table: bool = False  # DROP TABLE, or TRUNCATE: every row is gone
    dropped_columns: tuple[str, ...] = ()
    archives_table: bool = False  # archive_table(), or refuse_data_loss() with table None
    archived_columns: tuple[str, ...] = ()
    accepts_loss: bool = False  # refuse_data_loss(): the step is knowingly lossy, and guarded
    adds_index: bool = False
    index_online: bool = True
    # ALGORITHM=INSTANT/INPLACE/NOCOPY stated: the server refuses the ALTER rather than copy.
    online_algorithm: bool = False
    added_columns: dict[str, ColumnType | None] = field(default_factory=dict)
    type_changes: list[TypeChange] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Where the revision function called the helper this statement is in (outermost first).
    call_sites: tuple[int, ...] = ()
