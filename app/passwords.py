"""Password rules beyond length: the common-password list."""

from functools import lru_cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS


@lru_cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30,000 most common passwords of leaked password dumps, lower-cased.
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    """True for a password found in the common-password list, ignoring case."""
    return password.lower() in _common_passwords()
