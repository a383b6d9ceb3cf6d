"""Migration fixtures: every migration test also runs with the `mariadb+aiomysql://` scheme."""

from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.support import backends
from tests.support.alembic import fresh_database_url


@pytest.fixture(params=backends.MIGRATION_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def migration_url(backend: str, tmp_path: Path, mysql_database: URL | None) -> str:
    """An empty database for sync tests (outside any event loop)."""
    if backend != "sqlite" and mysql_database is None:
        pytest.skip("MariaDB unreachable (set REQUIRE_MYSQL=1 to fail)")
    return fresh_database_url(backend, tmp_path, mysql_database)
