"""The lease that is Galera's migration lock, on the single MariaDB server (any MySQL will do)."""

import pytest
from sqlalchemy import Connection, text

from app.migrate.lease import Lease
from tests.support.alembic import on_database


@pytest.fixture
def mysql_url(migration_url: str, backend: str) -> str:
    if backend == "sqlite":
        pytest.skip("the lease is for MySQL-family servers")
    return migration_url


def lease_on(url: str, *, lease_s: float = 30) -> Lease:
    def build(connection: Connection) -> Lease:
        return Lease(connection.engine.url, "lease-test", lease_s=lease_s)

    return on_database(url, build)


def test_a_held_lease_is_refused_then_granted_once_released(mysql_url: str) -> None:
    first, second = lease_on(mysql_url), lease_on(mysql_url)
    first.acquire(timeout_s=5)
    try:
        with pytest.raises(TimeoutError, match=f"holder {first.holder}"):
            second.acquire(timeout_s=0.5)
    finally:
        first.release()
    second = lease_on(mysql_url)
    second.acquire(timeout_s=5)
    second.release()
    holder = on_database(
        mysql_url, lambda c: c.execute(text("SELECT holder FROM migration_lock")).scalar()
    )
    assert holder is None


def test_a_lease_nobody_renews_is_taken_over(
    mysql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    made = lease_on(mysql_url)  # creates the table and the row
    made.acquire(timeout_s=5)
    made.release()

    def plant(connection: Connection) -> None:
        # What a holder that died leaves: a lease that has run out, no renewals.
        connection.execute(
            text("UPDATE migration_lock SET holder = 'gone:1:dead', expires_at = UTC_TIMESTAMP(6)")
        )

    on_database(mysql_url, plant)
    second = lease_on(mysql_url)
    second.acquire(timeout_s=5)
    try:
        holder = on_database(
            mysql_url, lambda c: c.execute(text("SELECT holder FROM migration_lock")).scalar()
        )
        assert holder == second.holder
    finally:
        second.release()
    assert "took over migration lock lease-test from gone:1:dead" in caplog.text
