"""User persistence as plain functions; they flush, the session dependency commits."""

from typing import Any

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.exceptions import UsernameTaken, UserNotFound
from app.migrate.retention import forget_archived_rows
from app.models import User


async def create_user(
    session: AsyncSession, *, username: str, password_hash: str, email: str | None
) -> User:
    user = User(username=username, password_hash=password_hash, email=email)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # the only constraint a valid body can break: unique username
        raise UsernameTaken() from exc
    return user


async def get_user(session: AsyncSession, *, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


# Built once: the hot read skips rebuilding the statement, and its compiled form is cached.
_PUBLIC_USER_BY_ID = select(User.id, User.username, User.email).where(
    User.id == bindparam("user_id")
)


async def read_public_user(
    connection: AsyncConnection, *, user_id: int
) -> Row[int, str, str | None]:
    """The public fields of one user through Core: the hot read, without ORM identity work."""
    row = (await connection.execute(_PUBLIC_USER_BY_ID, {"user_id": user_id})).first()
    if row is None:
        raise UserNotFound(user_id)
    return row


async def list_users(session: AsyncSession, *, after_id: int, limit: int) -> list[User]:
    """Keyset pagination: stable and index-only however deep the client pages."""
    query = select(User).where(User.id > after_id).order_by(User.id).limit(limit)
    return list((await session.scalars(query)).all())


async def update_user(session: AsyncSession, *, user_id: int, values: dict[str, Any]) -> User:
    if values:
        # Write first, read after: on SQLite a transaction that reads before it writes can fail
        # to upgrade its lock under concurrency instead of waiting for it.
        result = await session.execute(
            update(User).where(User.id == user_id).values(**values),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UserNotFound(user_id)
        session.expire_all()
    return await get_user(session, user_id=user_id)


async def delete_user(session: AsyncSession, *, user_id: int) -> None:
    """Delete the user, and in the same transaction their rows in every migration archive."""
    result = await session.execute(delete(User).where(User.id == user_id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise UserNotFound(user_id)
    await forget_archived_rows(session, table=User.__tablename__, column="id", value=user_id)
