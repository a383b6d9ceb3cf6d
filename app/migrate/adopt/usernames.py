"""The tutorial's usernames against our rules: too long, invalid, duplicated or look-alike."""

from collections import defaultdict

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, text

from app.schemas import Username
from app.usernames import username_key

_USERNAME: TypeAdapter[str] = TypeAdapter(Username)
LISTED_MAX = 50


def username_problems(connection: Connection, table: str) -> list[str]:
    """One line per problem, naming the users by id; empty if every username can be kept."""
    rows = connection.execute(text(f"SELECT id, username FROM {table} ORDER BY id")).all()  # noqa: S608
    problems: list[str] = []
    by_name: dict[str, list[int]] = defaultdict(list)
    by_key: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for user_id, username in rows:
        if username is None:
            problems.append(f"id {user_id}: no username; set one (UPDATE {table}) or delete it")
            continue
        reason = _rule_broken(username)
        if reason:
            problems.append(f"id {user_id} ({username!r}): username {reason}; rename it")
            continue
        by_name[username].append(user_id)
        by_key[username_key(username)].append((user_id, username))
    for name, ids in by_name.items():
        if len(ids) > 1:
            listed = ", ".join(map(str, ids))
            problems.append(
                f"ids {listed} share the username {name!r} (the tutorial had no unique "
                "constraint); rename or delete all but one"
            )
    for group in by_key.values():
        if len({name for _, name in group}) > 1:
            listed = ", ".join(f"{i} ({name!r})" for i, name in group)
            problems.append(f"ids {listed} look alike (one canonical username); rename all but one")
    if len(problems) > LISTED_MAX:
        more = len(problems) - LISTED_MAX
        problems = [*problems[:LISTED_MAX], f"... and {more} more"]
    return problems


def _rule_broken(username: str) -> str | None:
    try:
        _USERNAME.validate_python(username)
    except ValidationError as exc:
        return "; ".join(str(e["msg"]).removeprefix("Value error, ").lower() for e in exc.errors())
    return None
