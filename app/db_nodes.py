"""Several database nodes behind one URL (a Galera cluster): each new connection goes to a node
that answers and is Synced, and on Galera it waits for the cluster's earlier commits to apply
before it reads (wsrep_sync_wait), so a client reads its own writes whichever node served them."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Set on the aiomysql connection when a node before it in the order was skipped (down, or not
# Synced): `app.db_pool.recycle_failover_connections` replaces such connections after a while,
# so traffic returns to the node once it is back.
FAILOVER_MARK = "user_service_failover"


@dataclass(frozen=True)
class Node:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_node(entry: str, default_port: int = 3306) -> Node:
    """`host:port` or `host`; an IPv6 address in brackets: `[::1]:3306`."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return Node(host, int(rest[1:]) if rest.startswith(":") else default_port)
    host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "")
    return Node(host, int(port) if port else default_port)


class NodeOrder:
    """The order in which a new connection tries the nodes.

    `rotate=False` (writes): always the first node first, the others only while it is down;
    one writer node keeps Galera's certification conflicts (error 1213) rare. `rotate=True`
    (reads): each new connection starts one node further, spreading reads over the cluster.
    """

    def __init__(self, nodes: Sequence[Node], *, rotate: bool) -> None:
        if not nodes:
            raise ValueError("no database node")
        self.nodes = list(nodes)
        self.rotate = rotate
        self._next = 0

    def next_order(self) -> list[Node]:
        if not self.rotate:
            return list(self.nodes)
        start = self._next
        self._next = (start + 1) % len(self.nodes)
        return self.nodes[start:] + self.nodes[:start]


async def _fetch(connection: Any, statement: str) -> list[tuple[Any, ...]]:
    async with connection.cursor() as cursor:
        await cursor.execute(statement)
        return list(await cursor.fetchall())


async def prepare_node(connection: Any, sync_wait: int) -> str | None:
    """None if the node may serve, else why not. On Galera, sets the session's sync wait.

    A Galera node that is joining, a donor, or cut off from the majority (non-Primary) answers
    with stale data or refuses queries (error 1047): the connection is not used. SHOW, not
    @@wsrep_on: MySQL has no such variable and would refuse the query.
    """
    rows = await _fetch(connection, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
    if not rows or str(rows[0][1]).upper() != "ON":
        return None  # a single server
    status = dict(
        await _fetch(
            connection,
            "SHOW GLOBAL STATUS WHERE Variable_name IN "
            "('wsrep_ready', 'wsrep_local_state_comment')",
        )
    )
    ready, state = status.get("wsrep_ready"), status.get("wsrep_local_state_comment")
    if ready != "ON" or state != "Synced":
        return f"wsrep_ready={ready}, state={state}"
    if sync_wait:
        await _fetch(connection, f"SET SESSION wsrep_sync_wait = {int(sync_wait)}")
    return None
