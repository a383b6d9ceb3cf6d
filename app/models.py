"""The declarative base with its naming convention, and the ORM model of `user_list`.

Imports nothing from the web layer: `alembic/env.py` loads it without FastAPI.
"""

from sqlalchemy import Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

USERNAME_MAX = 10
# The canonical key (app.usernames): NFKC can turn one character into 18 (U+FDFA ARABIC
# LIGATURE SALLALLAHOU ALAYHE WASALLAM), the most any character expands under the key's
# folding and skeleton, so ten characters need at most 180.
NFKC_MAX_EXPANSION = 18
USERNAME_KEY_MAX = USERNAME_MAX * NFKC_MAX_EXPANSION
EMAIL_MAX = 12
PASSWORD_HASH_MAX = 255

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
