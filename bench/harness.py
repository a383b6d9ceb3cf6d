"""Process and load-generator plumbing for the benchmark: servers, wrk runs, databases."""
# ruff: noqa: S603, S607, S310  (a harness starts local processes and polls local URLs by design)

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from bench.openloop import percentile

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WRK_DIR = ROOT / "bench" / "wrk"
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_wrk() -> str:
    """wrk from Debian's packages, installed on first use."""
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk missing: apt-get install -y wrk")
    quiet = {"stdout": subprocess.DEVNULL}
    if subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet, check=False).returncode:
        subprocess.run(["apt-get", "update"], **quiet, check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


@dataclass
class Server:
    """A server process group we started; stopped by its own process-group id only."""

    name: str
    argv: Sequence[str]
    port: int
    env: Mapping[str, str] = field(default_factory=dict)
    ready_path: str = "/show/1"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "Server":
        logfile = (ROOT / "bench" / "out" / f"{self.name}.log").open("wb")
        self.proc = subprocess.Popen(
            list(self.argv),
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        SERVER_GROUPS.add(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see bench/out/{self.name}.log")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(self.proc.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        # uvicorn's children: the workers (spawn_main) and multiprocessing's resource tracker.
        return [int(line.split()[0]) for line in out.splitlines() if "resource_tracker" not in line]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        SERVER_GROUPS.discard(self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# Every scenario measures the service without its access log and metrics (as before they
# existed); the `observability` scenario measures what they cost.
QUIET = {"ACCESS_LOG": "false", "METRICS_ENABLED": "false"}


def uvicorn_server(name: str, port: int, database_url: str, **env: str) -> Server:
    argv = [
        str(BIN / "uvicorn"), "app.main:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning", "--backlog", "4096",
    ]  # fmt: skip
    return Server(name, argv, port, {"DATABASE_URL": database_url, **QUIET, **env})


def gunicorn_server(name: str, port: int, database_url: str) -> Server:
    argv = [
        str(BIN / "gunicorn"), "--workers", "2", "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench" / "baseline"),
        "--log-level", "warning", "--backlog", "4096", "app:app",
    ]  # fmt: skip
    return Server(name, argv, port, {"BASELINE_DATABASE_URL": database_url})


SERVER_GROUPS: set[int] = set()  # process groups of the servers running now


def wrk(
    url: str, script: str, connections: int, seconds: int, *args: str, timeout_s: int = 2
) -> dict[str, Any]:
    """One wrk run (2 threads, one per core); its JSON summary with req/s and the share of the
    machine that other processes took meanwhile (`foreign_cpu`) added."""
    argv = [
        "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s",
        "-s", str(WRK_DIR / script), url, "--", *args,
    ]  # fmt: skip
    with CpuMeter(set(SERVER_GROUPS)) as meter:
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    summary["foreign_cpu"] = meter.foreign_share
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    summary["errors"] = sum(
        summary[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return summary


def openloop(
    url: str,
    rate: float,
    seconds: float,
    connections: int,
    rows: int,
    timeout_s: float = 2.0,
    midway: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """GET /show/{id} at `rate` requests/s for `seconds` (bench/openloop.py), split over
    OPENLOOP_PROCS processes; latency percentiles from each request's due time, failures, the
    generator's own CPU (`gen_cpu`: cores) and lateness, and `foreign_cpu` as for wrk.
    `midway`, if given, is called halfway through; its answer is returned as `midway`."""
    procs = OPENLOOP_PROCS
    start = time.time() + 0.3 + 0.2 * procs  # every process imported and waiting by then
    argv = [
        sys.executable, "-m", "bench.openloop", url, "--rate", str(rate / procs),
        "--seconds", str(seconds), "--connections", str(max(1, connections // procs)),
        "--rows", str(rows), "--timeout", str(timeout_s), "--start", str(start),
    ]  # fmt: skip
    with CpuMeter(set(SERVER_GROUPS)) as meter:
        children = [
            subprocess.Popen([*argv, "--offset", str(k / procs)], cwd=ROOT, stdout=subprocess.PIPE)
            for k in range(procs)
        ]
        sampled = None
        if midway is not None:  # the children print only at the end: no pipe fills meanwhile
            time.sleep(max(0.0, start + seconds / 2 - time.time()))
            sampled = midway()
        outs = [json.loads(child.communicate()[0]) for child in children]
    if any(child.returncode for child in children):
        raise RuntimeError(f"bench.openloop failed against {url}")
    latencies = sorted(v for out in outs for v in out["latencies_us"])
    lags = sorted(v for out in outs for v in out["lags_us"])
    wall = max(out["wall_s"] for out in outs)
    errors = {k: sum(out["errors"][k] for out in outs) for k in outs[0]["errors"]}
    return {
        "offered_rate": rate,
        "seconds": seconds,
        "connections": connections,
        "processes": procs,
        "requests": len(latencies),
        "rps": (len(latencies) - sum(errors.values())) / wall,  # answered
        "errors": sum(errors.values()),
        "error_kinds": errors,
        **{f"p{name}_us": percentile(latencies, pct) for name, pct in LATENCY_POINTS},
        "max_us": latencies[-1] if latencies else 0,
        "lag_p99_us": percentile(lags, 99),
        "lag_max_us": lags[-1] if lags else 0,
        "gen_cpu": sum(out["cpu_s"] for out in outs) / wall,
        "foreign_cpu": meter.foreign_share,
        "midway": sampled,
    }


def connections_per_worker(server: Server) -> list[int]:
    """Established client connections each worker of the server holds now, most first (from
    /proc: the sockets in /proc/net/tcp on the server's port, matched to each worker's fds)."""
    port = f":{server.port:04X}"
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[1].endswith(port) and fields[3] == "01":  # local port, ESTABLISHED
                    established.add(f"socket:[{fields[9]}]")
    held = []
    for pid in server.worker_pids():
        count = 0
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    count += os.readlink(fd) in established
        held.append(count)
    return sorted(held, reverse=True)


# The open-loop percentiles reported: (suffix of the field, percentile).
LATENCY_POINTS = (("50", 50.0), ("90", 90.0), ("99", 99.0), ("999", 99.9))
OPENLOOP_PROCS = int(os.environ.get("BENCH_OPENLOOP_PROCS", "1"))


def worker_rss_kib(server: Server) -> list[int]:
    """VmRSS of each of the server's workers now, in KiB (from /proc/<pid>/status)."""
    sizes = []
    for pid in server.worker_pids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]))
    return sizes


def mysql_connect(database: str | None = None) -> "pymysql.connections.Connection[Any]":
    return pymysql.connect(**MYSQL, database=database, autocommit=True, charset="utf8mb4")  # type: ignore[arg-type]


def wait_for_mysql(timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with mysql_connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                return str(cur.fetchone()[0])  # type: ignore[index]
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def recreate_mysql_database(name: str) -> None:
    assert name.startswith("bench_"), "the benchmark only touches its own bench_* databases"
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


def drop_mysql_database(name: str) -> None:
    assert name.startswith("bench_")
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def alembic(database_url: str, *args: str) -> float:
    """Run the project's alembic CLI; returns its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "alembic"), *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def create_baseline_schema(database_url: str) -> None:
    """The baseline builds its own table, as the tutorial did, with Flask-SQLAlchemy."""
    subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT / "bench" / "baseline",
        env={**os.environ, "BASELINE_DATABASE_URL": database_url},
        check=True,
    )


def fill_mysql(database: str, rows: int, secret_column: str, secret: str, email: bool) -> None:
    """`rows` users u1..uN (emails uN@ex.io), in one INSERT ... SELECT from MariaDB's sequences,
    written back to disk before it returns (settle_mysql)."""
    email_expr = "CONCAT('u', seq, '@ex.io')" if email else None
    columns = ["id", "username", secret_column] + (["email"] if email else [])
    values = ["seq", "CONCAT('u', seq)", "%s"] + ([email_expr] if email_expr else [])
    with mysql_connect(database) as conn, conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO user_list ({', '.join(columns)}) "  # noqa: S608 (constants only)
            f"SELECT {', '.join(values)} FROM seq_1_to_{rows}",
            (secret,),
        )
    settle_mysql()


SETTLED_DIRTY_PAGES = 100  # of the buffer pool's 8,192 (128 MiB): what a quiet server keeps
SETTLE_TIMEOUT_S = 60.0


def settle_mysql(timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Wait until InnoDB has written back the pages just changed, flushing at full speed
    meanwhile. A 1M-row fill leaves ~3,800 dirty pages, which the page cleaner otherwise
    writes back over the next 10-20 s: into the first seconds of the scenario measured next,
    where it made the backfill's slowest requests (one fell before the migration began)."""
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
        previous = cur.fetchone()[0]  # type: ignore[index]
        cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                if int(cur.fetchone()[1]) < SETTLED_DIRTY_PAGES:  # type: ignore[index]
                    return
                time.sleep(0.2)
            log(f"MariaDB still writing back after {timeout_s:.0f} s; measuring anyway")
        finally:
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = %s", (previous,))


def fill_sqlite(path: Path, rows: int, secret_column: str, secret: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany(
            f"INSERT INTO user_list (id, username, {secret_column}, email) "  # noqa: S608
            "VALUES (?, ?, ?, ?)",
            ((n, f"u{n}", secret, f"u{n}@ex.io") for n in range(1, rows + 1)),
        )


def _proc_cpu_ticks(pid: int) -> tuple[int, int]:
    """(process group, utime + stime in clock ticks) of one process; (-1, 0) once it is gone."""
    return _proc_cpu_ticks_of(Path(f"/proc/{pid}/stat"))


def thread_cpu_s(pids: list[int]) -> tuple[float, float]:
    """CPU seconds so far of the processes' main threads (a uvicorn worker's event loop) and of
    all their other threads (the hashing pool, the default executor)."""
    tick = os.sysconf("SC_CLK_TCK")
    main = other = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            group, used = _proc_cpu_ticks_of(task / "stat")
            if group == -1:
                continue
            if int(task.name) == pid:
                main += used
            else:
                other += used
    return main / tick, other / tick


def cpu_per_request_ms(
    server: "Server", run: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, float]]:
    """`run()` (a wrk run against `server`) and the CPU each of its requests took, in ms: the
    workers' event loops, their other threads (hashing), MariaDB, and this process's children
    (wrk)."""
    workers = server.worker_pids()
    mariadb = int(Path("/run/mysqld/mysqld.pid").read_text())
    loop0, threads0 = thread_cpu_s(workers)
    db0, own0 = process_cpu_s(mariadb), _children_cpu_s()
    summary = run()
    loop1, threads1 = thread_cpu_s(workers)
    db1, own1 = process_cpu_s(mariadb), _children_cpu_s()
    per_request_ms = 1000 / max(summary["requests"], 1)
    return summary, {
        "loop_ms": (loop1 - loop0) * per_request_ms,
        "hashing_threads_ms": (threads1 - threads0) * per_request_ms,
        "mariadb_ms": (db1 - db0) * per_request_ms,
        "wrk_ms": (own1 - own0) * per_request_ms,
    }


def _children_cpu_s() -> float:
    times = os.times()
    return times.children_user + times.children_system


def process_cpu_s(pid: int) -> float:
    """CPU seconds so far of one process (all its threads)."""
    return _proc_cpu_ticks(pid)[1] / os.sysconf("SC_CLK_TCK")


def _proc_cpu_ticks_of(stat: Path) -> tuple[int, int]:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return -1, 0
    return int(fields[2]), int(fields[11]) + int(fields[12])


class CpuMeter:
    """How much of the machine processes outside the benchmark used during a measurement.

    Everything the benchmark started (its own process group and the servers' groups, wrk
    included) and MariaDB count as the benchmark; the rest of the machine's busy time is other
    work (on this workplace: other engineers' test runs), as a share of all cores.
    """

    def __init__(self, server_groups: set[int]) -> None:
        self.groups = server_groups | {os.getpgrp()}
        self.mariadb = [int(p) for p in subprocess.run(
            ["pidof", "mariadbd", "mysqld"], capture_output=True, text=True, check=False
        ).stdout.split()]  # fmt: skip

    def _snapshot(self) -> tuple[float, int, float]:
        ticks = 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                group, used = _proc_cpu_ticks(int(entry.name))
                if group in self.groups or int(entry.name) in self.mariadb:
                    ticks += used
        times = os.times()
        own_children = (times.children_user + times.children_system) * os.sysconf("SC_CLK_TCK")
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))  # not idle/iowait
        return time.monotonic(), ticks + int(own_children), busy

    def __enter__(self) -> "CpuMeter":
        self.start = self._snapshot()
        return self

    def __exit__(self, *_: object) -> None:
        end = self._snapshot()
        wall = end[0] - self.start[0]
        ours, busy = end[1] - self.start[1], end[2] - self.start[2]
        capacity = wall * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        self.foreign_share = max(0.0, (busy - ours) / capacity) if capacity else 0.0
