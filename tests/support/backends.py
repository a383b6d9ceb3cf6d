"""Test databases: a fresh SQLite file or a throwaway MariaDB database."""

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test")
REQUIRE_MYSQL = os.environ.get("REQUIRE_MYSQL") == "1"
# The login throttle's Redis store; tests use keys under a prefix of their own.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("REQUIRE_REDIS") == "1"
BACKENDS: Sequence[str] = ("sqlite", "mariadb")
# The migration tests also run once with SQLAlchemy's own MariaDB scheme, mariadb+aiomysql://.
MIGRATION_BACKENDS: Sequence[str] = (*BACKENDS, "mariadb-scheme")


def url_string(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def mysql_reachable(url: URL) -> str | None:
    """None if the server answers, else why not."""
    engine = create_async_engine(url, connect_args={"connect_timeout": 3})
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()
    return None


async def redis_reachable(url: str) -> str | None:
    """None if Redis answers PING, else why not."""
    client = aioredis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None


async def delete_redis_keys(url: str, prefix: str) -> None:
    client = aioredis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def with_scheme(backend: str, url: URL) -> URL:
    """`url` as the backend names it: `mariadb-scheme` uses SQLAlchemy's MariaDB dialect."""
    return url.set(drivername="mariadb+aiomysql") if backend == "mariadb-scheme" else url


def throwaway_mysql_url(server: URL) -> URL:
    return server.set(database=f"svc_test_{uuid.uuid4().hex[:12]}")


async def recreate_mysql_database(url: URL) -> None:
    """Drop and create `url`'s database, so each test starts from nothing."""
    name = url.database
    assert name and name.startswith("svc_test_"), (
        "refusing to drop a database the tests did not make"
    )
    engine = create_async_engine(url._replace(database=None))
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            await connection.execute(
                text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            )
    finally:
        await engine.dispose()


async def drop_mysql_database(url: URL) -> None:
    engine = create_async_engine(url._replace(database=None))
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    finally:
        await engine.dispose()


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'test.db'}"
