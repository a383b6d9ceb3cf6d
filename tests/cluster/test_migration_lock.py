"""Galera: replicas pointed at different nodes still migrate one at a time (issue 11)."""

import subprocess
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.migrate.lease import Lease
from app.migrate.lock import LOCK_PREFIX, MigrationLockError, migration_lock
from tests.support.alembic import (
    HEAD,
    copy_project,
    on_database,
    revisions,
    run_alembic,
    start_alembic,
)

# A revision slow enough that the runs overlap: its table is created, then it waits.
SLOW = f'''"""add cluster_probe: a table, then a pause long enough for the other runs to pile up

Revision ID: 0099
Revises: {HEAD}
"""

import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_probe",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cluster_probe"),
    )
    op.execute("SELECT SLEEP({{seconds}})")


def downgrade() -> None:
    op.drop_table("cluster_probe")
'''


def project_with_slow_step(tmp_path: Path, seconds: float) -> Path:
    root = copy_project(tmp_path / "project")
    source = SLOW.replace("{seconds}", f"{seconds:g}")
    (root / "alembic" / "versions" / "0099_add_cluster_probe.py").write_text(source)
    return root


def outcome(connection: Connection) -> tuple[list[str], list[tuple[str, str, bool]], object]:
    versions = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    journal = [
        (r.revision, r.direction, bool(r.success))
        for r in connection.execute(
            text("SELECT revision, direction, success FROM migration_journal ORDER BY id")
        )
    ]
    holder = connection.execute(text("SELECT holder FROM migration_lock")).scalar()
    return versions, journal, holder


def wait_all(processes: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    return [(p.wait(timeout=300), *p.communicate()) for p in processes]


def assert_applied_once(urls: list[str], results: list[tuple[int, str, str]]) -> None:
    for code, _out, err in results:
        assert code == 0, err
    expected = [*revisions(), "0099"]
    ran = sum(err.count("Running upgrade") for _code, _out, err in results)
    assert ran == len(expected), "each revision ran in exactly one process"
    for url in urls:  # every node has the same story: each revision once, at head, lock free
        versions, journal, holder = on_database(url, outcome)
        assert versions == ["0099"], url
        assert journal == [(revision, "upgrade", True) for revision in expected], url
        assert holder is None, url


def test_five_upgrades_on_three_nodes_apply_each_revision_once(
    cluster_urls: list[str], tmp_path: Path
) -> None:
    root = project_with_slow_step(tmp_path, 3)
    processes = [
        start_alembic(cluster_urls[i % len(cluster_urls)], "upgrade", "head", cwd=root)
        for i in range(5)
    ]
    assert_applied_once(cluster_urls, wait_all(processes))


def test_a_step_longer_than_the_lease_keeps_the_lock(
    cluster_urls: list[str], tmp_path: Path
) -> None:
    # The step outlasts the lease three times over: only renewals keep the others out.
    root = project_with_slow_step(tmp_path, 6)
    settings = {"migration_lock_lease_s": "2"}
    processes = [
        start_alembic(url, "upgrade", "head", cwd=root, **settings) for url in cluster_urls
    ]
    assert_applied_once(cluster_urls, wait_all(processes))


async def test_get_lock_alone_lets_two_nodes_both_hold_it(cluster_urls: list[str]) -> None:
    # Why the lease exists: GET_LOCK is per node, so a second node grants the same name.
    engines = [create_async_engine(url) for url in cluster_urls[:2]]
    try:
        async with engines[0].connect() as first, engines[1].connect() as second:
            got = [
                (await connection.execute(text("SELECT GET_LOCK('galera-test', 1)"))).scalar()
                for connection in (first, second)
            ]
    finally:
        for engine in engines:
            await engine.dispose()
    assert got == [1, 1]


def test_lock_wait_on_another_node_is_bounded_and_names_the_holder(
    cluster_urls: list[str],
) -> None:
    def lease_for(connection: Connection) -> Lease:
        name = f"{LOCK_PREFIX}{connection.exec_driver_sql('SELECT DATABASE()').scalar()}"
        return Lease(connection.engine.url, name, lease_s=30)

    held = on_database(cluster_urls[0], lease_for)
    held.acquire(timeout_s=10)

    def try_lock(connection: Connection) -> str:
        try:
            with migration_lock(connection, timeout_s=1, sqlite_busy_timeout_ms=100):
                pass
        except MigrationLockError as refused:
            return str(refused)
        raise AssertionError("the lock was granted on a second node while held on the first")

    try:
        message = on_database(cluster_urls[1], try_lock)
    finally:
        held.release()
    assert f"holder {held.holder}" in message
    assert "for over 1 s" in message


def test_a_dead_holders_lease_is_taken_over_once_it_expires(cluster_urls: list[str]) -> None:
    run_alembic(cluster_urls[0], "upgrade", "head")
    name = f"{LOCK_PREFIX}{make_url(cluster_urls[0]).database}"

    def plant(connection: Connection) -> None:
        # A holder that died: its lease has two seconds left and nobody renews it.
        connection.execute(
            text(
                "UPDATE migration_lock SET holder = 'gone:1:dead', "
                "expires_at = UTC_TIMESTAMP(6) + INTERVAL 2 SECOND WHERE name = :name"
            ),
            {"name": name},
        )

    on_database(cluster_urls[0], plant)
    result = run_alembic(cluster_urls[2], "downgrade", "-1")
    assert "took over migration lock" in result.stderr
    assert "gone:1:dead" in result.stderr
    versions, journal, holder = on_database(cluster_urls[1], outcome)
    assert versions == [revisions()[-2]]
    assert journal[-1] == (HEAD, "downgrade", True)
    assert holder is None
