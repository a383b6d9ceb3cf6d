"""Cluster fixtures: the Galera nodes of `make galera`, and a fresh database on all of them."""

import asyncio
import os
import uuid
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.backends import url_string

NODE_URLS = os.environ.get(
    "TEST_GALERA_URLS",
    ",".join(f"mysql+aiomysql://root@127.0.0.1:{port}/test" for port in (3311, 3312, 3313)),
).split(",")
REQUIRE_GALERA = os.environ.get("REQUIRE_GALERA") == "1"


async def cluster_problem(nodes: Sequence[URL]) -> str | None:
    """None if every node answers as a synced member of a cluster of all of them, else why not."""
    for url in nodes:
        engine = create_async_engine(url, connect_args={"connect_timeout": 3})
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text("SHOW GLOBAL STATUS LIKE 'wsrep_%'"))
                status = {str(name): str(value) for name, value in rows}
        except Exception as exc:
            return f"{url.host}:{url.port}: {type(exc).__name__}: {exc}"
        finally:
            await engine.dispose()
        state = status.get("wsrep_local_state_comment")
        size = status.get("wsrep_cluster_size")
        if state != "Synced" or size != str(len(nodes)):
            return f"{url.host}:{url.port}: wsrep state {state!r}, cluster size {size!r}"
    return None


async def run_sql(url: URL, statement: str) -> None:
    engine = create_async_engine(url._replace(database=None))
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def galera_nodes() -> list[URL]:
    """The cluster's nodes; the tests skip (fail with REQUIRE_GALERA=1) when it is not up."""
    nodes = [make_url(url) for url in NODE_URLS]
    problem = asyncio.run(cluster_problem(nodes))
    if problem is not None:
        if REQUIRE_GALERA:
            pytest.fail(f"REQUIRE_GALERA=1 but the Galera cluster is not usable: {problem}")
        pytest.skip(f"no Galera cluster (`make galera` starts one): {problem}")
    return nodes


@pytest.fixture
def cluster_urls(galera_nodes: list[URL]) -> Iterator[list[str]]:
    """A fresh database, created through the first node: one URL for it per node."""
    name = f"galera_test_{uuid.uuid4().hex[:12]}"
    create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    asyncio.run(run_sql(galera_nodes[0], create))
    yield [url_string(node.set(database=name)) for node in galera_nodes]
    asyncio.run(run_sql(galera_nodes[0], f"DROP DATABASE IF EXISTS `{name}`"))
