"""Request and response bodies: input is validated here, before anything touches the database."""

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from app.models import EMAIL_MAX, USERNAME_MAX
from app.passwords import is_common_password

PASSWORD_MIN = 8
PASSWORD_MAX = 128
PAGE_SIZE_MAX = 100


def _encodable(value: str) -> str:
    # Lone surrogates cannot be stored as UTF-8 by either backend (nor hashed).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _clean_username(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise ValueError("must not contain control or invisible formatting characters")
    # MySQL's binary collation ignores trailing spaces in comparisons and SQLite does not:
    # refusing surrounding whitespace makes uniqueness agree on both backends.
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def _uncommon(value: str) -> str:
    # The message names the rule, never the value: validation errors must not echo passwords.
    if is_common_password(value):
        raise ValueError("is one of the most common passwords; choose another")
    return value


Username = Annotated[
    str,
    Field(min_length=1, max_length=USERNAME_MAX, examples=["alice"]),
    AfterValidator(_encodable),
    AfterValidator(_clean_username),
]
Password = Annotated[
    str,
    Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX, examples=["correct horse"]),
    AfterValidator(_encodable),
    AfterValidator(_uncommon),
]
Email = Annotated[
    EmailStr,
    Field(examples=["alice@ex.io"]),
    AfterValidator(_encodable),
    # Checked after normalisation, on what is stored; the column holds EMAIL_MAX characters.
    Field(max_length=EMAIL_MAX),
]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"username": "alice", "password": "correct horse", "email": "alice@ex.io"}]
        },
    )

    username: Username
    password: Password
    email: Email | None = None


class UserUpdate(BaseModel):
    """Fields to change; an omitted field is left alone, `"email": null` clears the email."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "new@ex.io"}, {"password": "a new passphrase"}]},
    )

    email: Email | None = None
    password: Password | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{"id": 1, "username": "alice", "email": "alice@ex.io"}]},
    )

    id: int
    username: str
    email: str | None


class UserPage(BaseModel):
    """One page of users in id order; pass `next_after_id` as `after_id` for the next page."""

    items: list[UserOut]
    next_after_id: int | None


class Health(BaseModel):
    status: str
    database: str
    revision: str | None
    code_revision: str
    schema_matches_code: bool


class Probe(BaseModel):
    status: str
