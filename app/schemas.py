"""Request and response bodies: input is validated here, before anything touches the database."""

import unicodedata
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
)

from app.models import EMAIL_MAX, USERNAME_MAX
from app.passwords import (
    contains_username,
    is_common_password,
    is_one_repeated_character,
    normalize_password,
)
from app.usernames import has_visible_character

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
    # A name of Hangul fillers, braille blanks or combining marks alone looks empty on screen.
    if not has_visible_character(value):
        raise ValueError("must contain a visible character, not only fillers, marks or spaces")
    return value


# The messages name the rule, never the value: validation errors must not echo passwords.
def _uncommon(value: str) -> str:
    if is_common_password(value):
        raise ValueError("is one of the most common passwords; choose another")
    return value


def _not_one_character(value: str) -> str:
    if is_one_repeated_character(value):
        raise ValueError("must not be a single character repeated")
    return value


USERNAME_IN_PASSWORD = "must not contain the username"  # noqa: S105 (a message)


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
    # Normalised first: the rules, the hash and every later login see the NFKC form.
    AfterValidator(normalize_password),
    AfterValidator(_uncommon),
    AfterValidator(_not_one_character),
]
# The password being replaced: checked against the stored hash, not against today's rules.
CurrentPassword = Annotated[
    str,
    Field(min_length=1, max_length=PASSWORD_MAX),
    AfterValidator(_encodable),
    AfterValidator(normalize_password),
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

    @field_validator("password")
    @classmethod
    def _without_username(cls, password: str, info: ValidationInfo) -> str:
        username = info.data.get("username")  # absent if the username itself was invalid
        if username and contains_username(password, username):
            raise ValueError(USERNAME_IN_PASSWORD)
        return password


class UserUpdate(BaseModel):
    """Fields to change; an omitted field is left alone, `"email": null` clears the email.

    Changing one's own password takes `current_password` too (an admin changing another
    user's password does not).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"email": "new@ex.io"},
                {"password": "a new passphrase", "current_password": "correct horse"},
            ]
        },
    )

    email: Email | None = None
    password: Password | None = None
    current_password: CurrentPassword | None = None


class UserOut(BaseModel):
    """A user; `email` is there only for the user themself and for admins."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {"id": 1, "username": "alice", "email": "alice@ex.io"},
                {"id": 2, "username": "bob"},
            ]
        },
    )

    id: int
    username: str
    email: str | None = Field(
        default=None, description="Only to the user themself and to admins; absent otherwise."
    )


class Me(UserOut):
    """The authenticated user, with their role."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": 1, "username": "alice", "email": "alice@ex.io", "role": "user"}]
        }
    )

    role: Literal["user", "admin"]


class Token(BaseModel):
    """An opaque bearer token: send it as `Authorization: Bearer <access_token>`."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type)
    expires_in: int = Field(
        description="Seconds until the session ends however it is used; unused for "
        "SESSION_IDLE_TIMEOUT_S it ends sooner."
    )


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
