"""Canonical usernames: the key look-alike names share, and names with nothing visible in them.

The key is Unicode's NFKC_Casefold (compatibility forms such as fullwidth letters and the Kelvin
sign folded, case folded, default-ignorable characters such as U+3164 HANGUL FILLER removed)
followed by the confusable skeleton of Unicode UTS #39 (`admin` spelt with a Cyrillic U+0430
becomes `adrnin`, as `admin` does). Both come from ICU (PyICU): its SpoofChecker implements the
skeleton as UTS #39 defines it; the pure-Python confusable packages offer no skeleton().
"""

import unicodedata

import icu

from app.models import USERNAME_KEY_MAX

# Both are immutable once built and safe to share between threads.
_FOLD = icu.Normalizer2.getNFKCCasefoldInstance()
_SPOOF = icu.SpoofChecker()

# Rounds of fold and skeleton until the key stops changing: every code point needs at most 3.
MAX_ROUNDS = 8
# Characters that render as blank space yet are letters or symbols, so no category check or
# normalisation removes them (the Hangul fillers are default-ignorable: the fold drops them too).
BLANK_LOOKING = frozenset("\u2800\u3164\uffa0\u115f\u1160")
# Marks (M*), separators (Z*), controls, format, private-use and unassigned characters (C*).
INVISIBLE_CATEGORIES = ("M", "Z", "C")


def username_key(username: str) -> str:
    """The canonical key under which usernames must be unique (derived, never shown).

    The skeleton's prototypes are not case-folded (`0` becomes `O`), so the fold is applied
    again after it, until nothing changes (at most three rounds for any character): the key
    is its own key, and `b0b`, `BOB` and `bob` share one.
    """
    key: str = _FOLD.normalize(username)
    for _ in range(MAX_ROUNDS):
        again: str = _FOLD.normalize(_SPOOF.getSkeleton(0, key))
        if again == key:
            break
        key = again
    else:
        raise AssertionError(f"no fixed point after {MAX_ROUNDS} rounds")
    # MySQL's PAD SPACE collations ignore trailing spaces and SQLite does not: strip them so
    # uniqueness agrees on both backends.
    key = key.strip()
    assert len(key) <= USERNAME_KEY_MAX, "NFKC's expansion bound (18 per character) was broken"
    return key


def has_visible_character(username: str) -> bool:
    """False for names made only of fillers, marks, spaces or invisible characters."""
    return any(
        unicodedata.category(ch)[0] not in INVISIBLE_CATEGORIES and ch not in BLANK_LOOKING
        for ch in _FOLD.normalize(username)
    )
