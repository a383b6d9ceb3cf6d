"""Password rules beyond length: NFKC normalisation, the common-password list, the username."""

import unicodedata
from functools import lru_cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

# Below this length a username is inside too many passwords for the rule to mean anything
# (user "a" and every password with an "a"); it is meant for "alice" and "alice2024!".
USERNAME_RULE_MIN = 3


def normalize_password(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks: the same password typed on two keyboards (composed or
    decomposed accents, full-width digits) hashes and verifies the same."""
    return unicodedata.normalize("NFKC", password)


@lru_cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30,000 most common passwords of leaked password dumps, lower-cased.
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    """True for a password found in the common-password list, ignoring case."""
    return password.lower() in _common_passwords()


def is_one_repeated_character(password: str) -> bool:
    """True for "aaaaaaaa": one character however many times."""
    return len(set(password)) == 1


def contains_username(password: str, username: str) -> bool:
    """True if the password contains the username, ignoring case (usernames of 3 or more)."""
    if len(username) < USERNAME_RULE_MIN:
        return False
    return normalize_password(username).casefold() in normalize_password(password).casefold()
