"""Revision 0005's data migration: a canonical key for every username, and the look-alikes.

Existing users that collide under the key are reported by id, never deleted or renamed: who
keeps a name is a person's decision (docs/migrations.md says what an operator does next).
"""

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from app.config import Settings, get_settings
from app.migrate.backfill import Backfill, run_backfill
from app.migrate.oneoff import run_on_database
from app.usernames import username_key

TABLE = "user_list"
COLUMN = "username_key"
INDEX = "ix_user_list_username_key"
USERNAME_KEYS = Backfill(TABLE, COLUMN, ("username",), username_key)
LISTED_GROUPS_MAX = 50


class UsernameCollisions(CommandError):
    """Existing users whose usernames share one canonical key: the unique index cannot be built."""


def has_key_column(connection: Connection) -> bool:
    return any(c["name"] == COLUMN for c in inspect(connection).get_columns(TABLE))


def has_key_index(connection: Connection) -> bool:
    return any(i["name"] == INDEX for i in inspect(connection).get_indexes(TABLE))


def key_usernames(
    connection: Connection,
    settings: Settings,
    *,
    commit: Callable[[], None] | None = None,
    find_collisions: bool = True,
) -> int:
    """Give every user without a key one; stop with the colliding users' ids if any collide.

    Before the unique index exists the keys are written first and compared after (unless
    `find_collisions` is off: a caller about to build the index lets the build compare them,
    see `collisions_named`); once it exists (a catch-up of rows the previous release wrote) a
    batch it refuses names the users.
    """
    indexed = has_key_index(connection)
    filled = run_backfill(
        connection,
        USERNAME_KEYS,
        batch_size=settings.migration_backfill_batch_size,
        pause_s=settings.migration_backfill_pause_s,
        commit=commit,
        on_conflict=lambda values: _refuse_batch(connection, values),
    )
    if find_collisions and not indexed:
        _refuse_collisions(connection, commit)
    return filled


@contextmanager
def collisions_named(connection: Connection) -> Iterator[None]:
    """Around the unique index's build, which is the look-alike check: a build that existing
    keys break lists the colliding users by id instead of the server's one duplicate.

    Building the index sorts the keys once, in the storage engine; a GROUP BY over an
    unindexed column first (what this replaces) took 14 s on 1M rows, with reads waiting.
    """
    try:
        yield
    except IntegrityError:
        _refuse_collisions(connection, None)
        raise  # no look-alikes after all: the server's own error stands


def _refuse_collisions(connection: Connection, commit: Callable[[], None] | None) -> None:
    groups = colliding_users(connection)
    if groups:
        _forget_keys(connection, [i for group in groups for i, _ in group], commit)
        raise UsernameCollisions(_message(groups))


def _forget_keys(connection: Connection, ids: list[int], commit: Callable[[], None] | None) -> None:
    """Clear the colliding users' keys: the next run recomputes them from the names as they are
    then, after the operator renamed some (on SQLite the failed run is undone anyway)."""
    marks = ", ".join(str(int(i)) for i in ids)
    connection.execute(text(f"UPDATE {TABLE} SET {COLUMN} = NULL WHERE id IN ({marks})"))  # noqa: S608
    if commit is not None:
        commit()


def colliding_users(connection: Connection) -> list[list[tuple[int, str]]]:
    """Groups of (id, username) sharing one key, each in id order."""
    rows = connection.execute(
        text(
            f"SELECT id, username, {COLUMN} FROM {TABLE} WHERE {COLUMN} IN ("  # noqa: S608
            f"SELECT {COLUMN} FROM {TABLE} WHERE {COLUMN} IS NOT NULL "
            f"GROUP BY {COLUMN} HAVING COUNT(*) > 1) ORDER BY {COLUMN}, id"
        )
    ).all()
    groups: dict[str, list[tuple[int, str]]] = {}
    for user_id, username, key in rows:
        groups.setdefault(key, []).append((int(user_id), username))
    return sorted(groups.values())


def _refuse_batch(connection: Connection, values: Mapping[object, str]) -> None:
    """A catch-up batch broke the unique index: name the new users and who holds their keys."""
    keys = sorted(set(values.values()))
    placeholders = ", ".join(f":k{i}" for i in range(len(keys)))
    holders = connection.execute(
        text(f"SELECT id, username, {COLUMN} FROM {TABLE} WHERE {COLUMN} IN ({placeholders})"),  # noqa: S608
        {f"k{i}": k for i, k in enumerate(keys)},
    ).all()
    usernames: dict[object, str] = dict(
        connection.execute(
            text(f"SELECT id, username FROM {TABLE} WHERE id IN ({', '.join(map(str, values))})")  # noqa: S608
        ).all()
    )
    groups: dict[str, list[tuple[int, str]]] = {}
    for user_id, username, key in holders:
        groups.setdefault(key, []).append((int(user_id), username))
    for user_id, key in values.items():
        groups.setdefault(key, []).append((int(str(user_id)), usernames.get(user_id, "?")))
    raise UsernameCollisions(_message(sorted(g for g in groups.values() if len(g) > 1)))


def _message(groups: list[list[tuple[int, str]]]) -> str:
    listed = "; ".join(
        "ids " + ", ".join(str(i) for i, _ in group)
        + " (" + ", ".join(repr(name) for _, name in group) + ")"
        for group in groups[:LISTED_GROUPS_MAX]
    )  # fmt: skip
    more = (
        f"; and {len(groups) - LISTED_GROUPS_MAX} more groups"
        if len(groups) > LISTED_GROUPS_MAX
        else ""
    )
    return (
        f"{len(groups)} group(s) of existing users have usernames that look alike (the same "
        f"canonical key), so usernames cannot be made unique: {listed}{more}. No user was "
        "deleted or renamed. Rename all but one user of each group (set a new username in "
        "SQL) or delete the impostors (DELETE /users/ID), then run "
        "`alembic upgrade head` again: it resumes where it stopped (docs/migrations.md)."
    )


def _backfill_keys(_args: argparse.Namespace) -> int:
    settings = get_settings()

    def work(connection: Connection) -> int:
        if not has_key_column(connection):
            raise SystemExit("user_list has no username_key yet: run `alembic upgrade head`")
        return key_usernames(connection, settings, commit=connection.commit)

    try:
        filled = asyncio.run(run_on_database(work))
    except UsernameCollisions as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"{filled} user(s) given a username key" if filled else "every user has a key")
    return 0


def add_backfill_keys_command(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register `backfill-keys`: key the users a previous release (or `--sql`) left without."""
    command = commands.add_parser(
        "backfill-keys",
        help="give users without a username_key theirs (after --sql, or after a rolling deploy)",
    )
    command.set_defaults(run=_backfill_keys)
