"""Every migration, on both backends: one head, step by step, no drift, exact and lossless undo.

Sync tests on purpose: pytest-alembic and env.py call `asyncio.run` themselves, so these run
outside any event loop.
"""

import asyncio
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from pytest_alembic.plugin.fixtures import alembic_runner
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine, database_url
from app.migrate.config import alembic_config as project_alembic_config
from tests.support.alembic import (
    downgrade,
    on_database,
    upgrade,
)
from tests.support.schema import insert_sample_rows, schema_snapshot, table_rows

__all__ = [
    "alembic_runner",
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config() -> Config:
    """pytest-alembic: the project's own alembic.ini and script folder."""
    config = project_alembic_config()
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture
def alembic_engine(migration_url: str) -> Iterator[AsyncEngine]:
    """pytest-alembic: an async engine on a fresh database of the current backend."""
    engine = create_engine(
        Settings(database_url=migration_url), database_url(migration_url), pooled=False
    )
    yield engine


def revisions() -> list[str]:
    """The revisions from base to head, in order."""
    script = ScriptDirectory.from_config(project_alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def discarded_on_downgrade(revision: str) -> set[str]:
    """Tables whose rows `revision`'s downgrade drops on purpose, as the revision declares
    (0003: sessions are revoked, failed-login counts forgotten; docs/migrations.md)."""
    module = ScriptDirectory.from_config(project_alembic_config()).get_revision(revision).module
    return set(getattr(module, "discarded_on_downgrade", ()))


def snapshot(url: str) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    return on_database(url, lambda c: (schema_snapshot(c), table_rows(c)))


def project(rows: dict[str, list[dict[str, Any]]], like: dict[str, list[dict[str, Any]]]) -> Any:
    """`rows` cut down to the tables and columns present in `like`."""
    cut: dict[str, list[dict[str, Any]]] = {}
    for table, sample in like.items():
        names = set(sample[0]) if sample else None
        cut[table] = [
            {k: v for k, v in row.items() if names is None or k in names}
            for row in rows.get(table, [])
        ]
    return cut


def test_every_step_undoes_exactly_and_keeps_data_both_ways(migration_url: str) -> None:
    url = migration_url
    previous = "base"
    for revision in revisions():
        if previous != "base":
            on_database(url, partial(insert_sample_rows, tag=f"r{previous}"))
        schema_before, rows_before = snapshot(url)

        asyncio.run(upgrade(url, revision))
        on_database(url, partial(insert_sample_rows, tag=f"u{revision}"))
        schema_after, rows_after = snapshot(url)
        assert all(rows_after.values()), "every table holds sample rows"
        for table, rows in rows_before.items():
            kept = project({table: rows_after[table]}, {table: rows})[table][: len(rows)]
            assert kept == rows, f"upgrade to {revision} changed data of {table}"

        asyncio.run(downgrade(url, previous))
        schema_down, rows_down = snapshot(url)
        assert schema_down == schema_before, f"downgrade of {revision} left a different schema"
        for table, rows in rows_down.items():
            expected = project({table: rows_after[table]}, {table: rows})[table]
            assert rows == expected, f"downgrade of {revision} lost or changed data of {table}"

        asyncio.run(upgrade(url, revision))
        schema_again, rows_again = snapshot(url)
        assert schema_again == schema_after, f"re-upgrade to {revision} differs from the first"
        discarded = discarded_on_downgrade(revision)
        for table in discarded:
            assert rows_again.pop(table) == [], f"{revision}: {table} was meant to come back empty"
            rows_after.pop(table)
        assert rows_again == rows_after, f"{revision}: data did not come back byte-identical"
        previous = revision
