"""Fixtures: every test runs once per backend (SQLite, MariaDB) on a fresh, migrated database."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine, database_url
from app.main import create_app
from tests.support import alembic, backends
from tests.support.tcp_proxy import TcpProxy

# In-process tests address the app as http://test: serve that Host besides the local names.
os.environ.setdefault("ALLOWED_HOSTS", "test,localhost,127.0.0.1,[::1]")
# The suite starts hundreds of apps in one process: freezing at each start would keep whatever
# the earlier tests left alive out of the collector's reach. tests/api/test_gc_tuning.py turns it
# on deliberately.
os.environ.setdefault("GC_FREEZE", "false")
TEST_HASH_MEMORY_KIB = 1024
# The service's own argon2id cost, for tests that need hashes to take their real time.
OWASP_HASH_COST: dict[str, Any] = {"hash_memory_kib": 19_456, "hash_time_cost": 2}


@pytest.fixture(scope="session")
def mysql_database() -> Iterator[URL | None]:
    """A throwaway MariaDB database for this run; None (tests skip) if no server answers."""
    server = make_url(backends.MYSQL_URL)
    problem = asyncio.run(backends.mysql_reachable(server))
    if problem is not None:
        if backends.REQUIRE_MYSQL:
            pytest.fail(f"REQUIRE_MYSQL=1 but MariaDB at {server!r} is unreachable: {problem}")
        yield None
        return
    url = backends.throwaway_mysql_url(server)
    yield url
    asyncio.run(backends.drop_mysql_database(url))


@pytest.fixture(params=backends.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def empty_database_url(backend: str, tmp_path: Path, mysql_database: URL | None) -> str:
    """A database with nothing in it, on the current backend."""
    if backend == "sqlite":
        return backends.sqlite_url(tmp_path)
    if mysql_database is None:
        pytest.skip(f"MariaDB unreachable at {backends.MYSQL_URL} (set REQUIRE_MYSQL=1 to fail)")
    await backends.recreate_mysql_database(mysql_database)
    return backends.url_string(backends.with_scheme(backend, mysql_database))


@pytest.fixture
async def database_url_at_head(empty_database_url: str) -> str:
    await alembic.upgrade(empty_database_url)
    return empty_database_url


@pytest.fixture
def settings(database_url_at_head: str, tmp_path: Path) -> Settings:
    # Bursts of argon2 registrations here test the database, not the hashing pool's bounds
    # (tests/test_floods.py does): on a loaded two-core machine 40 take well over the
    # production wait, so the suite queues more and waits longer for a hasher and a request.
    # And hash at a test cost (argon2id m=1 MiB, t=1): the thousands of hashes the suite makes
    # test accounts, not argon2, and at OWASP's cost they took minutes of its ten. The tests
    # of the hashing cost itself (tests/api/test_auth.py) ask for the defaults.
    return Settings(
        database_url=database_url_at_head,
        hash_wait_s=60,
        hash_queue_max=1000,
        request_timeout_s=90,
        hash_memory_kib=TEST_HASH_MEMORY_KIB,
        hash_time_cost=1,
        # Each app its own CPU slots, as on a host of its own: not shared with the other
        # pytest-xdist process's apps or a server running beside the suite.
        hash_cpu_slots_dir=tmp_path / "cpu-slots",
    )


@pytest.fixture
async def redis_settings(settings: Settings) -> AsyncIterator[Settings]:
    """`settings` with the login throttle in Redis, under a key prefix of this test's own."""
    problem = await backends.redis_reachable(backends.REDIS_URL)
    if problem is not None:
        if backends.REQUIRE_REDIS:
            pytest.fail(
                f"REQUIRE_REDIS=1 but Redis at {backends.REDIS_URL} is unreachable: {problem}"
            )
        pytest.skip(f"Redis unreachable at {backends.REDIS_URL} (set REQUIRE_REDIS=1 to fail)")
    prefix = f"svc_test_{uuid.uuid4().hex[:12]}:"
    yield settings.model_copy(update={"redis_url": backends.REDIS_URL, "redis_key_prefix": prefix})
    await backends.delete_redis_keys(backends.REDIS_URL, prefix)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A separate engine on the test database, to check what was really stored."""
    engine = create_engine(settings, database_url(settings.database_url))
    yield engine
    await engine.dispose()


@pytest.fixture
async def proxy(database_url_at_head: str) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of the test database that the test can cut, stall and restore."""
    url = make_url(database_url_at_head)
    tcp = TcpProxy(url.host or "127.0.0.1", url.port or 3306)
    await tcp.start()
    yield tcp
    await tcp.close()
