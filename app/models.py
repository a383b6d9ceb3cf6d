"""The declarative base with its naming convention, and the ORM models: users and sessions.

Imports nothing from the web layer: `alembic/env.py` loads it without FastAPI.
"""

from datetime import datetime

from sqlalchemy import DateTime, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

USERNAME_MAX = 10
# The canonical key (app.usernames): NFKC can turn one character into 18 (U+FDFA ARABIC
# LIGATURE SALLALLAHOU ALAYHE WASALLAM), the most any character expands under the key's
# folding and skeleton, so ten characters need at most 180.
NFKC_MAX_EXPANSION = 18
USERNAME_KEY_MAX = USERNAME_MAX * NFKC_MAX_EXPANSION
EMAIL_MAX = 12
PASSWORD_HASH_MAX = 255
ROLE_MAX = 16
ROLE_USER = "user"
ROLE_ADMIN = "admin"
SHA256_HEX = 64

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "user_list"
    # Binary collation on MySQL/MariaDB so usernames compare byte-wise and case-sensitively,
    # as SQLite's default BINARY collation does.
    # sqlite_autoincrement: ids are never reused, as on MariaDB (archives are keyed by id).
    __table_args__ = (
        {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True)
    # Unique among users: look-alike names share a key (app.usernames). Nullable because rows
    # written by a release that predates it get theirs from the backfill (revision 0005).
    username_key: Mapped[str | None] = mapped_column(
        String(USERNAME_KEY_MAX), index=True, unique=True
    )
    password_hash: Mapped[str] = mapped_column(String(PASSWORD_HASH_MAX))
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))
    # "user" or "admin"; the server default lets the column be added without a table copy.
    role: Mapped[str] = mapped_column(String(ROLE_MAX), default=ROLE_USER, server_default=ROLE_USER)


# Sessions and throttle counters are keyed by sha256 hex digests: ASCII, compared byte-wise.
_HASH_KEYED = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


class UserSession(Base):
    """One login: the sha256 of its bearer token (never the token), whose it is, and when.

    No foreign key to user_list on purpose: on SQLite a batch migration rebuilds user_list
    (drop, copy, rename), and with foreign keys on, dropping the parent would cascade into or
    be refused by this table. A session is only ever read joined to its user, and user ids are
    never reused, so a row left without its user authenticates no one; deleting a user deletes
    their sessions in the same transaction.
    """

    __tablename__ = "user_session"
    __table_args__ = ({**_HASH_KEYED},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(SHA256_HEX), unique=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime] = mapped_column(DateTime)


class LoginThrottle(Base):
    """Login attempts per account since its last success (keyed by the sha256 of the username
    tried), in a window that ends at window_ends_at (app/login_throttle.py)."""

    __tablename__ = "login_throttle"
    __table_args__ = ({**_HASH_KEYED},)

    key_hash: Mapped[str] = mapped_column(String(SHA256_HEX), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    window_ends_at: Mapped[datetime] = mapped_column(DateTime, index=True)
