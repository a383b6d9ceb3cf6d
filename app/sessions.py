"""Login sessions: opaque bearer tokens, stored only as their sha256, with idle and absolute expiry.

Why sha256 and not argon2 for tokens: a token is 256 random bits, so nobody can guess one or
brute-force one from its hash, however fast the hash; a slow hash protects low-entropy secrets
(passwords) and would only add CPU to every authenticated request here. Storing the hash still
matters: a leaked copy of the table (a backup, an archive, a read replica) logs nobody in.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import ROLE_ADMIN, User, UserSession
from app.state import AppState

TOKEN_BYTES = 32  # 256 bits from the OS's CSPRNG
# A token is at most this long (secrets.token_urlsafe(32) is 43 characters): anything longer is
# refused before it costs a hash or a query.
TOKEN_MAX_CHARS = 128
# last_used_at is written at most this often per session (a write per request would double the
# cost of every authenticated read); the idle timeout is therefore exact to within it.
TOUCH_EVERY_S_MAX = 60


@dataclass(frozen=True)
class CurrentUser:
    """Who is asking, as their session says."""

    user_id: int
    username: str
    email: str | None
    role: str
    session_id: int

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _lifetimes(settings: Settings) -> tuple[timedelta, timedelta]:
    return (
        timedelta(seconds=settings.session_idle_timeout_s),
        timedelta(seconds=settings.session_absolute_timeout_s),
    )


async def create_session(
    session: AsyncSession, *, user_id: int, now: datetime, settings: Settings
) -> str:
    """A new session for `user_id`; returns its token (the only time it exists in clear)."""
    idle, absolute = _lifetimes(settings)
    # Sessions nobody used again would pile up: each login clears its user's expired ones.
    # Found by a plain read, then deleted by primary key: a DELETE by user_id would take gap
    # locks on ix_user_session_user_id (MariaDB, REPEATABLE READ) even when it deletes nothing,
    # and two logins' gap locks and INSERTs deadlock each other.
    expired = list(
        await session.scalars(
            select(UserSession.id).where(
                UserSession.user_id == user_id,
                or_(
                    UserSession.created_at <= now - absolute,
                    UserSession.last_used_at <= now - idle,
                ),
            )
        )
    )
    if expired:
        await session.execute(delete(UserSession).where(UserSession.id.in_(expired)))
    token = new_token()
    session.add(
        UserSession(token_hash=hash_token(token), user_id=user_id, created_at=now, last_used_at=now)
    )
    await session.flush()
    return token


# Built once: the statement every authenticated request runs, one round trip with its user.
_SESSION_BY_TOKEN_HASH = (
    select(
        UserSession.id,
        UserSession.created_at,
        UserSession.last_used_at,
        User.id.label("user_id"),
        User.username,
        User.email,
        User.role,
    )
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash"))
)


async def authenticate(state: AppState, token: str) -> CurrentUser | None:
    """The user whose live session `token` opens, or None (unknown, expired or revoked)."""
    if not token or len(token) > TOKEN_MAX_CHARS:
        return None
    # The lookup compares hashes, so its timing says nothing about the tokens themselves.
    async with state.read_connection() as connection:
        row = (
            await connection.execute(_SESSION_BY_TOKEN_HASH, {"token_hash": hash_token(token)})
        ).first()
    if row is None:
        return None
    now = state.clock()
    idle, absolute = _lifetimes(state.settings)
    if now >= row.created_at + absolute or now >= row.last_used_at + idle:
        async with state.engine.begin() as connection:
            await connection.execute(delete(UserSession).where(UserSession.id == row.id))
        return None
    if now - row.last_used_at >= min(timedelta(seconds=TOUCH_EVERY_S_MAX), idle / 10):
        async with state.engine.begin() as connection:
            await connection.execute(
                update(UserSession).where(UserSession.id == row.id).values(last_used_at=now)
            )
    return CurrentUser(
        user_id=row.user_id,
        username=row.username,
        email=row.email,
        role=row.role,
        session_id=row.id,
    )


async def revoke(session: AsyncSession, *, session_id: int) -> None:
    await session.execute(delete(UserSession).where(UserSession.id == session_id))


async def revoke_all(
    session: AsyncSession, *, user_id: int, except_session_id: int | None = None
) -> int:
    """Revoke every session of `user_id` (but one, if given); returns how many there were."""
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if except_session_id is not None:
        query = query.where(UserSession.id != except_session_id)
    result = await session.execute(query)
    return int(result.rowcount)  # type: ignore[attr-defined]
