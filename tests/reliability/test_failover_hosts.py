"""DATABASE_FAILOVER_HOSTS without a cluster: a node that refuses is skipped, a connection made
around it is replaced later (the node may be back), and no node at all is a driver error (503)."""

import asyncio

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.config import Settings
from app.db import create_engine, create_read_pool
from app.db_nodes import Node, NodeOrder, parse_node
from tests.support.net import free_port


def test_node_entries_parse_with_and_without_a_port() -> None:
    assert parse_node("db1:3307") == Node("db1", 3307)
    assert parse_node(" db2 ") == Node("db2", 3306)
    assert parse_node("[::1]:3308") == Node("::1", 3308)
    assert parse_node("[::1]") == Node("::1", 3306)


def test_writes_keep_the_order_and_reads_rotate() -> None:
    nodes = [Node("a", 1), Node("b", 2), Node("c", 3)]
    writes = NodeOrder(nodes, rotate=False)
    assert writes.next_order() == writes.next_order() == nodes
    reads = NodeOrder(nodes, rotate=True)
    assert [reads.next_order()[0].host for _ in range(4)] == ["a", "b", "c", "a"]


@pytest.fixture
def behind_a_dead_node(backend: str, settings: Settings) -> Settings:
    """The URL names a port nobody listens on; the real server is the failover host."""
    if backend == "sqlite":
        pytest.skip("failover hosts are for MySQL/MariaDB")
    real = make_url(settings.database_url)
    dead = real.set(port=free_port()).render_as_string(hide_password=False)
    return settings.model_copy(
        update={
            "database_url": dead,
            "database_failover_hosts": [f"{real.host}:{real.port or 3306}"],
            "db_failover_recycle_s": 0.2,
        }
    )


async def test_a_refusing_node_is_skipped_and_its_stand_in_replaced_later(
    behind_a_dead_node: Settings,
) -> None:
    engine = create_engine(behind_a_dead_node)
    connects = 0

    def count(*_args: object) -> None:
        nonlocal connects
        connects += 1

    event.listen(engine.sync_engine, "connect", count)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        await asyncio.sleep(0.3)  # past db_failover_recycle_s: the first node may be back
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        assert connects == 2
    finally:
        await engine.dispose()
    reads = create_read_pool(behind_a_dead_node)
    assert reads is not None
    try:
        async with reads.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await reads.dispose()


async def test_no_live_node_is_a_driver_error(behind_a_dead_node: Settings) -> None:
    nowhere = behind_a_dead_node.model_copy(
        update={"database_failover_hosts": [f"127.0.0.1:{free_port()}"]}
    )
    engine = create_engine(nowhere)
    try:
        with pytest.raises(OperationalError):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
