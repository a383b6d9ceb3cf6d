"""User persistence as plain functions; they flush, the session dependency commits."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, delete, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.exceptions import UsernameTaken, UserNotFound
from app.migrate.retention import forget_archived_rows
from app.models import ROLE_USER, User, UserSession
from app.point_reads import PointRead
from app.usernames import username_key


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction has committed (never if it rolls back):
    a security log line says what happened, not what was about to."""
    event.listen(session.sync_session, "after_commit", lambda _session: callback(), once=True)


@dataclass(frozen=True)
class NewUser:
    """A user just inserted: what the create routes answer with."""

    id: int
    username: str
    email: str | None
    role: str


# Built once; a create runs it on the session's connection, inside the request's transaction.
_INSERT_USER = insert(User)


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password_hash: str,
    email: str | None,
    role: str = ROLE_USER,
) -> NewUser:
    """Insert one user (the session dependency commits). A Core INSERT rather than the ORM's
    unit of work, which for one new row cost more CPU than the statement (bench/: create_cpu)."""
    values = {
        "username": username,
        "username_key": username_key(username),
        "password_hash": password_hash,
        "email": email,
        "role": role,
    }
    connection = await session.connection()
    try:
        result = await connection.execute(_INSERT_USER, values)
    except IntegrityError as exc:  # the only constraints a valid body can break: unique names
        raise UsernameTaken() from exc
    key = result.inserted_primary_key
    assert key is not None, "an INSERT into user_list always has its new id"
    return NewUser(id=int(key[0]), username=username, email=email, role=role)


async def get_user(session: AsyncSession, *, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


# The hot read: compiled once per dialect and run on the driver's cursor (app/point_reads.py).
_PUBLIC_USER_BY_ID = PointRead(
    select(User.id, User.username, User.email).where(User.id == bindparam("user_id"))
)


async def read_public_user(
    source: AsyncConnection | AsyncEngine, *, user_id: int
) -> tuple[int, str, str | None]:
    """The id, username and email of one user: the hot read, no ORM, no Row objects. On a
    connection, or on a connection of its own checked out of `source`'s pool."""
    row = await _PUBLIC_USER_BY_ID.first(source, user_id=user_id)
    if row is None:
        raise UserNotFound(user_id)
    user_id, username, email = row
    return user_id, username, email


_LOGIN_BY_USERNAME = select(User.id, User.password_hash).where(
    User.username == bindparam("username")
)


async def read_login(connection: AsyncConnection, *, username: str) -> Row[int, str] | None:
    """The id and password hash of `username`, or None: what a login checks."""
    return (await connection.execute(_LOGIN_BY_USERNAME, {"username": username})).first()


_CREDENTIALS_BY_ID = select(User.id, User.username, User.password_hash).where(
    User.id == bindparam("user_id")
)


async def read_credentials(connection: AsyncConnection, *, user_id: int) -> Row[int, str, str]:
    """The username and password hash of one user: what a password change checks."""
    row = (await connection.execute(_CREDENTIALS_BY_ID, {"user_id": user_id})).first()
    if row is None:
        raise UserNotFound(user_id)
    return row


async def list_users(session: AsyncSession, *, after_id: int, limit: int) -> list[User]:
    """Keyset pagination: stable and index-only however deep the client pages."""
    query = select(User).where(User.id > after_id).order_by(User.id).limit(limit)
    return list((await session.scalars(query)).all())


async def update_user(session: AsyncSession, *, user_id: int, values: dict[str, Any]) -> User:
    if "username" in values:  # the key follows the name, whoever changes it
        values = {**values, "username_key": username_key(values["username"])}
    if values:
        # Write first, read after: on SQLite a transaction that reads before it writes can fail
        # to upgrade its lock under concurrency instead of waiting for it.
        try:
            result = await session.execute(
                update(User).where(User.id == user_id).values(**values),
                execution_options={"synchronize_session": False},
            )
        except IntegrityError as exc:  # a new username whose key another user holds
            raise UsernameTaken() from exc
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UserNotFound(user_id)
        session.expire_all()
    return await get_user(session, user_id=user_id)


async def delete_user(session: AsyncSession, *, user_id: int) -> None:
    """Delete the user and, in the same transaction, every session of theirs and their rows in
    every migration archive."""
    result = await session.execute(delete(User).where(User.id == user_id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise UserNotFound(user_id)
    await session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    await forget_archived_rows(session, table=User.__tablename__, column="id", value=user_id)
