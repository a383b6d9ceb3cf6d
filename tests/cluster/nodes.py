"""The cluster's nodes as processes: kill one the hard way, start it again into the cluster."""

import os
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[2]
# .ci/galera.sh keeps each node (its pid file among them) under this directory.
GALERA_DIR = Path(os.environ.get("GALERA_DIR", "/tmp/user-service-galera"))  # noqa: S108


def node_pid(n: int) -> int:
    return int((GALERA_DIR / f"node{n}" / "mariadbd.pid").read_text().strip())


def kill_node(n: int) -> None:
    """SIGKILL node n's mariadbd (its own pid file, nothing else), and wait until it is gone."""
    pid = node_pid(n)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def rejoin_node(n: int) -> None:
    """`.ci/galera.sh rejoin n`: start it again if it is down, wait until all 3 are Synced."""
    subprocess.run([str(ROOT / ".ci" / "galera.sh"), "rejoin", str(n)], check=True, timeout=240)


async def status_value(node: URL, name: str) -> int:
    engine = create_async_engine(node.set(database=None))
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(text(f"SHOW GLOBAL STATUS LIKE '{name}'"))).one()
            return int(row[1])
    finally:
        await engine.dispose()


async def connections_to(node: URL, database: str) -> int:
    """How many client connections node has open on `database` (from its processlist)."""
    engine = create_async_engine(node.set(database=None))
    query = text("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = :db")
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(query, {"db": database})).scalar_one())
    finally:
        await engine.dispose()
