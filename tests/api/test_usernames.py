"""Canonical usernames on both backends: look-alikes are one name (409), blank names are 422."""

import pytest
from httpx import AsyncClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import USERNAME_KEY_MAX, USERNAME_MAX
from app.usernames import has_visible_character, username_key

PASSWORD = "s3cret-passw0rd"
KELVIN = "\u212a"
CYRILLIC_A = "\u0430"

# The pairs: the first registers, the look-alike is refused.
LOOK_ALIKES = [
    ("caf\u00e9", "cafe\u0301"),  # é precomposed (NFC) and e + combining acute (NFD)
    ("admin", f"{CYRILLIC_A}dmin"),  # Cyrillic small a
    ("admin", "\uff41dmin"),  # fullwidth small a
    ("K", KELVIN),  # Kelvin sign
    ("Erin", "ERIN"),  # case
    ("bob", "bob\u3164"),  # a trailing Hangul filler adds nothing visible
    ("paypal", f"p{CYRILLIC_A}yp{CYRILLIC_A}l"),
]
BLANK_NAMES = [
    "\u3164",  # HANGUL FILLER
    "\u3164\u3164\u3164",
    "\u2800",  # BRAILLE PATTERN BLANK
    "\uffa0",  # HALFWIDTH HANGUL FILLER
    "\u115f\u1160",  # Hangul choseong and jungseong fillers
    "\u0301\u0301",  # combining marks only
    "\u3000",  # ideographic space
    "\u2800\u0301\u3164",
]


async def post(client: AsyncClient, username: str) -> int:
    response = await client.post("/users", json={"username": username, "password": PASSWORD})
    return response.status_code


@pytest.mark.parametrize(("first", "look_alike"), LOOK_ALIKES)
async def test_a_look_alike_of_a_taken_name_is_409(
    client: AsyncClient, first: str, look_alike: str
) -> None:
    assert first != look_alike
    assert await post(client, first) == 201
    response = await client.post("/users", json={"username": look_alike, "password": PASSWORD})
    assert response.status_code == 409
    assert response.json() == {"detail": "username already taken"}


@pytest.mark.parametrize(("first", "look_alike"), LOOK_ALIKES[:4])
async def test_the_look_alike_is_409_whichever_registers_first(
    client: AsyncClient, first: str, look_alike: str
) -> None:
    assert await post(client, look_alike) == 201
    assert await post(client, first) == 409


@pytest.mark.parametrize("username", BLANK_NAMES)
async def test_a_name_of_fillers_marks_or_spaces_only_is_422(
    client: AsyncClient, username: str
) -> None:
    response = await client.post("/users", json={"username": username, "password": PASSWORD})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "username"]
    assert username not in response.text  # the input is not echoed


async def test_distinct_names_stay_distinct_and_the_key_is_stored(
    client: AsyncClient, db: AsyncEngine
) -> None:
    for username in ("alice", "alicia", "caf\u00e9", "cafe", "\u6cd5\u5916", "\U0001f600"):
        assert await post(client, username) == 201
    async with db.connect() as connection:
        query = text("SELECT username, username_key FROM user_list")
        rows = (await connection.execute(query)).all()
    assert all(key == username_key(name) for name, key in rows)


def test_the_key_of_the_longest_expansion_fits_the_column() -> None:
    # U+FDFA expands to 18 characters under NFKC: ten of them are the worst a name can do.
    assert len(username_key("\ufdfa" * USERNAME_MAX)) == USERNAME_KEY_MAX


@given(st.text(min_size=1, max_size=USERNAME_MAX))
def test_every_key_fits_its_column_and_is_stable(username: str) -> None:
    key = username_key(username)
    assert len(key) <= USERNAME_KEY_MAX
    assert username_key(key) == key  # keys are fixed points: a key names itself


def test_visible_names_with_invisible_parts_are_accepted() -> None:
    assert has_visible_character("a\u3164")
    assert has_visible_character("\u0301a")
    assert not has_visible_character("")
