"""Which database is this? The one place that answers it, for the app, env.py and revisions.

SQLAlchemy names a MySQL-family dialect "mysql" or "mariadb" depending on the URL's scheme
(`mysql+aiomysql://` or `mariadb+aiomysql://`), whatever the server is: every check here accepts
both, and tells MariaDB from MySQL by the server, not by the scheme.
"""

from typing import Any

from sqlalchemy import Connection, Table, event
from sqlalchemy.engine import URL, Dialect

MYSQL_FAMILY = frozenset({"mysql", "mariadb"})


def _name(target: URL | Dialect) -> str:
    return target.get_backend_name() if isinstance(target, URL) else target.name


def is_sqlite(target: URL | Dialect) -> bool:
    return _name(target) == "sqlite"


def is_in_memory_sqlite(url: URL) -> bool:
    """An in-memory SQLite database: its one connection is the database (StaticPool)."""
    return is_sqlite(url) and url.database in (None, "", ":memory:")


def is_mysql(target: URL | Dialect) -> bool:
    """MySQL or MariaDB, under either scheme."""
    return _name(target) in MYSQL_FAMILY


def is_postgresql(target: URL | Dialect) -> bool:
    return _name(target) == "postgresql"


def is_mariadb(dialect: Dialect) -> bool:
    """A MariaDB server (known once connected, or from a `mariadb://` URL offline)."""
    return is_mysql(dialect) and bool(getattr(dialect, "is_mariadb", False))


def is_galera(connection: Connection) -> bool:
    """A MariaDB/MySQL node of a Galera cluster (wsrep replication on)?

    Asked of the server, not the URL: a cluster node looks like any other server to a client.
    """
    if not is_mysql(connection.dialect):
        return False
    row = connection.exec_driver_sql("SHOW VARIABLES LIKE 'wsrep_on'").first()
    return row is not None and str(row[1]).upper() == "ON"


def server_version(dialect: Dialect) -> tuple[int, ...]:
    return tuple(v for v in (dialect.server_version_info or ()) if isinstance(v, int))


def supports_instant_add_drop(dialect: Dialect, *, offline: bool = False) -> bool:
    """Can ADD/DROP COLUMN run with ALGORITHM=INSTANT (a metadata change, no table copy)?

    MariaDB has it from 10.4 (drop included), MySQL from 8.0.29. Offline (`--sql`) there is no
    server to ask, and the script is written for the supported servers.
    """
    if not is_mysql(dialect):
        return False
    if offline:
        return True
    floor = (10, 4) if is_mariadb(dialect) else (8, 0, 29)
    return server_version(dialect) >= floor


def instant_clause(dialect: Dialect, *, offline: bool = False) -> str:
    """`, ALGORITHM=INSTANT` to append to an ALTER TABLE where the server supports it."""
    return ", ALGORITHM=INSTANT" if supports_instant_add_drop(dialect, offline=offline) else ""


def supports_alter_algorithm_floor(dialect: Dialect) -> bool:
    """MariaDB >= 10.3.7 has the `alter_algorithm` session variable (Oracle MySQL has none)."""
    return is_mariadb(dialect) and server_version(dialect) >= (10, 3, 7)


def mirror_mysql_table_options(table: Table, _connection: Any, **_kw: Any) -> None:
    """`before_create` hook: a table's mysql_* options count for the mariadb dialect too.

    Under a `mariadb://` URL SQLAlchemy reads only mariadb_* options ("MariaDB-only mode"), so
    a revision written with mysql_charset/mysql_collate would create its table with the
    database's default collation there, and usernames would compare case-insensitively.
    """
    for key, value in list(table.dialect_kwargs.items()):
        if key.startswith("mysql_"):
            table.dialect_kwargs.setdefault(f"mariadb_{key.removeprefix('mysql_')}", value)


def honour_mysql_options_on_mariadb() -> None:
    """Install `mirror_mysql_table_options` for every table created (idempotent)."""
    if not event.contains(Table, "before_create", mirror_mysql_table_options):
        event.listen(Table, "before_create", mirror_mysql_table_options)
