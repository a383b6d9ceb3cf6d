"""Who holds the lock a DDL statement waits for: named connections, with a KILL to end each."""

from typing import Any

from sqlalchemy import Connection


def describe_blockers(connection: Connection, table: str | None) -> str:
    """Who holds the table lock: metadata_lock_info when loaded, else processlist + InnoDB."""
    try:
        rows = _metadata_lock_holders(connection, table) or _open_transactions(connection, table)
    except Exception as exc:  # diagnosis must never hide the original failure
        return f"unknown ({type(exc).__name__}: {exc})"
    rows = list({row["id"]: row for row in reversed(rows)}.values())[::-1]  # one per connection
    if not rows:
        return (
            "no other connection found (it may have just finished, or this database user "
            "lacks the PROCESS privilege needed to see other users' connections)"
        )
    return "; ".join(
        f"connection {r['id']} ({r['user']}@{r['host']}, {r['command']} for {r['time']} s"
        + (f", transaction open since {r['trx_started']}" if r.get("trx_started") else "")
        + (f", lock {r['lock_mode']}" if r.get("lock_mode") else "")
        + (f", running `{short_statement(str(r['info']))}`" if r.get("info") else "")
        + f"; KILL {r['id']} ends it)"
        for r in rows
    )


def _metadata_lock_holders(connection: Connection, table: str | None) -> list[dict[str, Any]]:
    loaded = connection.exec_driver_sql(
        "SELECT 1 FROM information_schema.PLUGINS "
        "WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'"
    ).first()
    if not loaded:
        return []
    query = (
        "SELECT m.THREAD_ID AS id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, "
        "p.TIME AS time, p.INFO AS info, m.LOCK_MODE AS lock_mode, t.trx_started "
        "FROM information_schema.METADATA_LOCK_INFO m "
        "JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID "
        "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = m.THREAD_ID "
        "WHERE m.THREAD_ID <> CONNECTION_ID() AND m.TABLE_SCHEMA = DATABASE() "
        "AND COALESCE(p.STATE, '') NOT LIKE 'Waiting for table metadata lock%%'"
    )
    params: tuple[Any, ...] = ()
    if table:
        query += " AND m.TABLE_NAME = %s"
        params = (table,)
    return [dict(r._mapping) for r in connection.exec_driver_sql(query, params)]


def _open_transactions(connection: Connection, table: str | None) -> list[dict[str, Any]]:
    # Without metadata_lock_info: the connections of this database holding a transaction open
    # (an idle transaction keeps its metadata locks) or running a statement on the table.
    query = (
        "SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, "
        "p.TIME AS time, p.INFO AS info, t.trx_started "
        "FROM information_schema.PROCESSLIST p "
        "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID "
        "WHERE p.ID <> CONNECTION_ID() AND p.COMMAND <> 'Daemon' "
        "AND COALESCE(p.STATE, '') NOT LIKE 'Waiting for table metadata lock%%' "
        "AND ((p.DB = DATABASE() AND t.trx_started IS NOT NULL) OR p.INFO LIKE %s) "
        "ORDER BY t.trx_started IS NULL, t.trx_started LIMIT 5"
    )
    pattern = f"%{table}%" if table else "%%no-table%%"
    return [dict(r._mapping) for r in connection.exec_driver_sql(query, (pattern,))]


def short_statement(statement: str) -> str:
    """A statement on one line, cut to a readable length for messages."""
    flat = " ".join(statement.split())
    return flat if len(flat) <= 160 else flat[:157] + "..."
