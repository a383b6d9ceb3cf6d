"""ORM model of the tutorial's `user_list` table."""

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

USERNAME_MAX = 10
EMAIL_MAX = 12
PASSWORD_HASH_MAX = 255


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
    password_hash: Mapped[str] = mapped_column(String(PASSWORD_HASH_MAX))
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))
