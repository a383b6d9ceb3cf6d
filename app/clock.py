"""The service's notion of now: naive UTC in whole seconds, as the DATETIME columns store it."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    # Whole seconds: MariaDB's DATETIME keeps none, so what is compared is what was stored.
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
