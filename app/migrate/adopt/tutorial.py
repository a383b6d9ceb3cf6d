"""Recognise the tutorial's schema (Flask-Migrate's `user_list`), or say what differs from it."""

import enum
from dataclasses import dataclass

from sqlalchemy import Connection, Integer, String, inspect, text

from app.migrate.config import VERSION_TABLE, is_bookkeeping_table, script_directory
from app.migrate.gate import read_revision

TABLE = "user_list"
# Where the tutorial's rows wait, renamed, while our migrations build `user_list`; dropped at
# the end with the plaintext passwords in it.
HELD_TABLE = "tutorial_user_list"
HASH_COLUMN = "password_hash"
# name -> (type, length); `email` is there after the tutorial's second migration.
TUTORIAL_COLUMNS: dict[str, tuple[type, int | None]] = {
    "id": (Integer, None),
    "username": (String, 10),
    "password": (String, 10),
}
EMAIL = ("email", (String, 12))


class Stage(enum.Enum):
    TUTORIAL = "the tutorial's database"
    TAKING_OVER = "an adoption that stopped after the passwords were hashed"
    OURS = "already this service's database"


class NotTutorial(Exception):
    """The database is neither the tutorial's nor ours: nothing is changed."""


@dataclass(frozen=True)
class Found:
    stage: Stage
    revision: str | None  # Flask-Migrate's revision id (TUTORIAL), or ours
    table: str  # where the tutorial's rows are
    has_email: bool = False
    has_hash_column: bool = False


def is_ours(revision: str | None) -> bool:
    if revision is None:
        return False
    try:
        return script_directory().get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False


def recognise(connection: Connection) -> Found:
    """Which stage the database is at; `NotTutorial` listing the differences otherwise."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    revision = read_revision(connection)
    if HELD_TABLE in tables:
        held = {c["name"] for c in inspector.get_columns(HELD_TABLE)}
        return Found(Stage.TAKING_OVER, revision, HELD_TABLE, "email" in held, True)
    if is_ours(revision):
        return Found(Stage.OURS, revision, TABLE)
    problems = [f"unexpected table {t}" for t in sorted(tables) if not _expected(t)]
    if TABLE not in tables:
        raise NotTutorial("; ".join([f"no {TABLE} table", *problems]))
    if VERSION_TABLE not in tables or revision is None:
        problems.append(f"no Flask-Migrate revision in {VERSION_TABLE}")
    elif connection.execute(text(f"SELECT COUNT(*) FROM {VERSION_TABLE}")).scalar_one() != 1:  # noqa: S608
        problems.append(f"{VERSION_TABLE} holds several revisions (branches)")
    columns = {c["name"]: c["type"] for c in inspector.get_columns(TABLE)}
    expected = dict(TUTORIAL_COLUMNS)
    if EMAIL[0] in columns:
        expected[EMAIL[0]] = EMAIL[1]
    if HASH_COLUMN in columns:  # a previous run of ours added it
        expected[HASH_COLUMN] = (String, 255)
    for name, (kind, length) in expected.items():
        found = columns.get(name)
        if found is None:
            problems.append(f"{TABLE}.{name} is missing")
        elif not isinstance(found, kind) or getattr(found, "length", None) != length:
            want = f"{kind.__name__.upper()}" + (f"({length})" if length else "")
            problems.append(f"{TABLE}.{name} is {found}, the tutorial's is {want}")
    problems += [f"unexpected column {TABLE}.{n}" for n in sorted(set(columns) - set(expected))]
    if inspector.get_pk_constraint(TABLE)["constrained_columns"] != ["id"]:
        problems.append(f"{TABLE}'s primary key is not id")
    if problems:
        raise NotTutorial("; ".join(problems))
    return Found(Stage.TUTORIAL, revision, TABLE, EMAIL[0] in columns, HASH_COLUMN in columns)


def _expected(table: str) -> bool:
    # The journal may exist from an earlier, stopped run of `adopt`.
    return table == TABLE or is_bookkeeping_table(table)
