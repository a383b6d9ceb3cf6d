"""Management commands: `python -m app.admin create-admin USERNAME [--email EMAIL]`.

The password is read from a prompt (asked twice) or, when standard input is not a terminal,
from its first line: never from the command line or the environment, where other users of the
machine (`ps`, /proc) and shell histories would see it.
"""

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from app import crud
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.exceptions import UsernameTaken
from app.hashing import HashingPool
from app.migrate.gate import SchemaMismatch, check_schema
from app.models import ROLE_ADMIN
from app.schemas import UserCreate
from app.security_log import Event, log_event


class CommandFailed(Exception):
    """A refusal to report in one line, without a traceback."""


def read_password(prompt: str = "Password: ") -> str:
    """From the terminal (twice, unechoed), or the first line of a piped standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise CommandFailed("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def create_admin(
    settings: Settings, *, username: str, password: str, email: str | None = None
) -> int:
    """Create `username` as an admin, with the same rules as registration; returns its id."""
    try:
        body = UserCreate(username=username, password=password, email=email)
    except ValidationError as exc:
        # Field names and rules only: the messages never contain the password.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise CommandFailed(problems) from None
    engine = create_engine(settings)
    hasher = HashingPool.from_settings(settings)
    try:
        try:
            await check_schema(engine, settings.schema_ahead_policy)
        except SchemaMismatch as exc:
            raise CommandFailed(str(exc)) from None
        password_hash = await hasher.hash(body.password)
        async with create_sessionmaker(engine)() as session:
            try:
                user = await crud.create_user(
                    session,
                    username=body.username,
                    password_hash=password_hash,
                    email=body.email,
                    role=ROLE_ADMIN,
                )
            except UsernameTaken:
                raise CommandFailed(f"username {body.username!r} is already taken") from None
            await session.commit()
            user_id = user.id
    finally:
        hasher.close()
        await engine.dispose()
    log_event(Event.ADMIN_CREATED, user_id=user_id, client="cli")
    return user_id


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "create-admin", help="create an admin user; the password is read from a prompt or stdin"
    )
    create.add_argument("username")
    create.add_argument("--email", default=None)
    args = parser.parse_args(argv)
    try:
        password = read_password()
        user_id = asyncio.run(
            create_admin(
                get_settings(), username=args.username, password=password, email=args.email
            )
        )
    except CommandFailed as exc:
        print(f"create-admin: {exc}", file=sys.stderr)
        return 1
    print(f"created admin {args.username!r} (id {user_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
