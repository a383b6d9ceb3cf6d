"""Scenario `galera`: the service on the 3-node cluster of `make galera`: reads through one node
and spread over three, a commit's latency against the single server, 0002 up and down under
reads (again with a transaction held open on another node)."""
# ruff: noqa: S603  (runs the repository's own .ci/galera.sh)

import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pymysql

from bench import harness
from bench.common import OUR_POOL, SECONDS, Results, our_url, warm
from bench.harness import ROOT, Server, log

GALERA_ROWS = int(os.environ.get("BENCH_GALERA_ROWS", "1000000"))
NODE_PORTS = (3311, 3312, 3313)
DB = "bench_galera"
SINGLE_DB = "galera_bench_single"  # on the standalone server (3306), for the commit latency
FILL_CHUNK = 50_000  # rows per INSERT: one Galera write set each, well under its size limits
COMMITS = 300


def node(port: int, database: str | None = None) -> "pymysql.connections.Connection[Any]":
    return pymysql.connect(
        host="127.0.0.1", port=port, user="root", database=database, autocommit=True
    )


def cluster_up() -> bool:
    """Every node answers, Synced, in a cluster of three."""
    for port in NODE_PORTS:
        try:
            with node(port) as conn, conn.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                            "('wsrep_local_state_comment', 'wsrep_cluster_size')")  # fmt: skip
                status = dict(cur.fetchall())
        except pymysql.err.OperationalError:
            return False
        if status != {"wsrep_local_state_comment": "Synced", "wsrep_cluster_size": "3"}:
            return False
    return True


def galera_sh(command: str) -> None:
    subprocess.run([str(ROOT / ".ci" / "galera.sh"), command], check=True)


def fill(rows: int, secret: str) -> None:
    with node(NODE_PORTS[0], DB) as conn, conn.cursor() as cur:
        for low in range(1, rows + 1, FILL_CHUNK):
            high = min(low + FILL_CHUNK - 1, rows)
            cur.execute(
                "INSERT INTO user_list (id, username, password_hash) "  # noqa: S608 (numbers)
                f"SELECT seq, CONCAT('u', seq), %s FROM seq_{low}_to_{high}",
                (secret,),
            )


def commit_latency(port: int, database: str) -> dict[str, float]:
    """COMMITS autocommit single-row INSERTs, one after another: the milliseconds each took."""
    with node(port, database) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS commit_probe (id INT AUTO_INCREMENT PRIMARY KEY)")
        took = []
        for _ in range(COMMITS):
            started = time.perf_counter()
            cur.execute("INSERT INTO commit_probe () VALUES ()")
            took.append((time.perf_counter() - started) * 1000)
        cur.execute("DROP TABLE commit_probe")
    took.sort()
    return {
        "p50_ms": took[len(took) // 2],
        "p99_ms": took[int(len(took) * 0.99)],
        "max_ms": took[-1],
    }


def reads_server(name: str, port: int, failover: bool) -> Server:
    """The previous release (as in `migration`) on node 1, or on all three nodes."""
    env = {"DATABASE_URL": our_url(DB, NODE_PORTS[0]), **OUR_POOL, **harness.QUIET}
    if failover:
        env["DATABASE_FAILOVER_HOSTS"] = ",".join(f"127.0.0.1:{p}" for p in NODE_PORTS[1:])
    argv = [
        str(harness.BIN / "uvicorn"), "bench.prev_release:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "2", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return Server(name, argv, port, env)


def held_transaction(port: int, release: threading.Event, outcome: dict[str, str]) -> None:
    """A transaction on `port` that has read user_list (holding its metadata lock) until
    `release`; then its COMMIT's outcome: Galera's DDL aborts it rather than wait for it."""
    with node(port, DB) as conn, conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SELECT username FROM user_list WHERE id = 1")
        release.wait()
        try:
            cur.execute("COMMIT")
            outcome["held"] = "committed"
        except pymysql.err.MySQLError as exc:
            outcome["held"] = f"aborted ({exc.args[0]})"


def write_probe(stop: threading.Event, outcome: dict[str, Any]) -> None:
    """Single-row INSERTs through each node in turn until `stop`: the slowest, and the failed
    (a write the DDL aborted; the service would run it again)."""
    conns = [node(port, DB) for port in NODE_PORTS]
    took: list[float] = []
    failed = 0
    try:
        with conns[0].cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS write_probe (id INT AUTO_INCREMENT PRIMARY KEY)"
            )
        while not stop.is_set():
            for conn in conns:
                started = time.perf_counter()
                try:
                    with conn.cursor() as cur:
                        cur.execute("INSERT INTO write_probe () VALUES ()")
                except pymysql.err.MySQLError:
                    failed += 1
                took.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    finally:
        for conn in conns:
            conn.close()
    outcome["writes"] = {"count": len(took), "failed": failed, "max_ms": max(took, default=0.0)}


def migrate_under_load(server: Server, duration: int, hold_on: int | None) -> dict[str, Any]:
    """0002 up then down through node 1 while wrk reads (c=16) through `server` and a probe
    writes through every node."""
    url = our_url(DB, NODE_PORTS[0])
    timings: dict[str, Any] = {}
    release = threading.Event()
    stop_writes = threading.Event()
    writer = threading.Thread(target=write_probe, args=(stop_writes, timings))
    writer.start()
    holder: threading.Thread | None = None
    if hold_on is not None:
        holder = threading.Thread(target=held_transaction, args=(hold_on, release, timings))
        holder.start()

    def migrate() -> None:
        time.sleep(duration * 0.25)
        timings["upgrade_s"] = harness.alembic(url, "upgrade", "0002")
        release.set()
        time.sleep(duration * 0.25)
        timings["downgrade_s"] = harness.alembic(url, "downgrade", "0001")

    migrator = threading.Thread(target=migrate)
    migrator.start()
    load = harness.wrk(server.url, "show.lua", 16, duration, str(GALERA_ROWS))
    migrator.join()
    release.set()
    stop_writes.set()
    writer.join()
    if holder is not None:
        holder.join()
    return {"load": load, **timings}


def with_cluster(work: Callable[[], None]) -> None:
    """Run `work` on the cluster, starting it if none answers and stopping only what it started."""
    started = not cluster_up()
    if started:
        log("galera: no cluster answers on 3311-3313; starting one (.ci/galera.sh start)")
        galera_sh("start")
    try:
        work()
    finally:
        if started:
            galera_sh("stop")


def scenario_galera(results: Results, secret: str) -> None:
    """The figures of docs/scaling.md, on GALERA_ROWS rows."""
    with_cluster(lambda: measure(results, secret))


def measure(results: Results, secret: str) -> None:
    log(f"galera: {GALERA_ROWS} rows in {DB} on the cluster, 0001 -> 0002 -> 0001 under c=16")
    with node(NODE_PORTS[0]) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DB}`")
        cur.execute(f"CREATE DATABASE `{DB}` CHARACTER SET utf8mb4")
    servers: list[Server] = []
    entry: dict[str, Any] = {"rows": GALERA_ROWS}
    try:
        harness.alembic(our_url(DB, NODE_PORTS[0]), "upgrade", "0001")
        started = time.perf_counter()
        fill(GALERA_ROWS, secret)
        log(f"  filled in {time.perf_counter() - started:.1f} s")
        duration = max(3 * SECONDS, 12)
        for key, failover, port in (("reads_1_node", False, 18131), ("reads_3_nodes", True, 18132)):
            server = reads_server(f"galera-{key}", port, failover)
            servers.append(server.start())
            warm(server)
            entry[key] = harness.wrk(server.url, "show.lua", 16, duration, str(GALERA_ROWS))
        spread = servers[-1]
        # The same load without a migration: the latency the machine gives anyway.
        entry["control"] = harness.wrk(spread.url, "show.lua", 16, duration, str(GALERA_ROWS))
        entry["migration"] = migrate_under_load(spread, duration, hold_on=None)
        entry["migration_held"] = migrate_under_load(spread, duration, hold_on=NODE_PORTS[2])
        entry["commit_galera"] = commit_latency(NODE_PORTS[0], DB)
        with node(3306) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{SINGLE_DB}`")
        try:
            entry["commit_single"] = commit_latency(3306, SINGLE_DB)
        finally:
            with node(3306) as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{SINGLE_DB}`")
    finally:
        for server in servers:
            server.stop()
        with node(NODE_PORTS[0]) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DB}`")
    results["galera"] = entry
    log("  " + summary(entry))


def summary(entry: dict[str, Any]) -> str:
    one, three = entry["reads_1_node"], entry["reads_3_nodes"]
    parts = [f"reads c=16: {one['rps']:,.0f}/s via 1 node, {three['rps']:,.0f}/s over 3"]
    for key, label in (("migration", "0002 up/down"), ("migration_held", "same, txn held")):
        m = entry[key]
        parts.append(
            f"{label}: up {m['upgrade_s']:.2f} s, down {m['downgrade_s']:.2f} s, "
            f"{m['load']['errors']} failed, max {m['load']['max_us'] / 1000:.0f} ms, "
            f"writes {m['writes']['failed']} failed of {m['writes']['count']}, "
            f"max {m['writes']['max_ms']:.0f} ms"
            + (f", held txn {m['held']}" if "held" in m else "")
        )
    parts.append(f"no migration: max {entry['control']['max_us'] / 1000:.0f} ms")
    g, s = entry["commit_galera"], entry["commit_single"]
    parts.append(f"commit p50 {g['p50_ms']:.2f} ms on Galera vs {s['p50_ms']:.2f} ms single")
    return "; ".join(parts)
