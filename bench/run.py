"""`make bench`: our service against the tutorial's Flask app, scenario by scenario, then report.

Both sides run at once on fresh databases filled the same way; each figure comes from wrk runs
in alternating rounds (ours first in even rounds, the baseline first in odd ones) so that drift
on this shared machine hits both sides alike. Knobs: BENCH_ROUNDS (5), BENCH_SECONDS (3),
BENCH_ROWS (10000), BENCH_MIGRATION_ROWS (1000000). Results go to bench/out/results.json and
docs/benchmarks.md (+ docs/benchmarks.png).
"""
# ruff: noqa: S603, S607, S105, RUF001  (a harness runs local processes; a bench password)

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench import harness, report
from bench.harness import ROOT, Server, log, wrk

# Many short rounds rather than a few long ones: on a shared machine a pair of runs back to back
# sees the same background load, and the median of more pairs shrugs off a busy moment.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
ROWS = int(os.environ.get("BENCH_ROWS", "10000"))
MIGRATION_ROWS = int(os.environ.get("BENCH_MIGRATION_ROWS", "1000000"))
CONCURRENCY = (16, 64, 256)
PASSWORD = "b3nch-Pw9q"  # fits the baseline's varchar(10), passes our password rules
CREATE_CONNS = 8  # 2 workers x 2 hashing threads, twice over: enough to keep every core hashing
PROXY_PORT = 13307
RTT_MS = 5.0

Results = dict[str, Any]


# The service's pool for these runs: 20 steady connections per worker and no overflow. The
# default (10 + 10 overflow) opens and closes overflow connections all the time under steady
# load (~20 new connections a second in a c=64 read run), each costing several round trips.
OUR_POOL = {"DB_POOL_SIZE": "20", "DB_MAX_OVERFLOW": "0"}


def our_url(database: str, port: int = 3306, driver: str = "aiomysql") -> str:
    return f"mysql+{driver}://root@127.0.0.1:{port}/{database}"


def baseline_url(database: str, port: int = 3306) -> str:
    return f"mysql+pymysql://root@127.0.0.1:{port}/{database}"


def password_hash() -> str:
    from app.security import _password_hash

    return _password_hash().hash(PASSWORD)


def prepare_mysql(secret: str) -> None:
    log(f"fresh MariaDB databases bench_ours / bench_baseline with {ROWS} users each")
    harness.recreate_mysql_database("bench_ours")
    harness.alembic(our_url("bench_ours"), "upgrade", "head")
    harness.fill_mysql("bench_ours", ROWS, "password_hash", secret, email=True)
    harness.recreate_mysql_database("bench_baseline")
    harness.create_baseline_schema(baseline_url("bench_baseline"))
    harness.fill_mysql("bench_baseline", ROWS, "password", PASSWORD, email=True)


def prepare_sqlite(directory: Path, secret: str) -> tuple[str, str]:
    ours, baseline = directory / "ours.db", directory / "baseline.db"
    ours_url, base_url = f"sqlite+aiosqlite:///{ours}", f"sqlite:///{baseline}"
    harness.alembic(ours_url, "upgrade", "head")
    harness.fill_sqlite(ours, ROWS, "password_hash", secret)
    harness.create_baseline_schema(base_url)
    harness.fill_sqlite(baseline, ROWS, "password", PASSWORD)
    return ours_url, base_url


def compare(
    results: Results,
    key: str,
    sides: dict[str, Server],
    script: str,
    conns: int,
    *args: str,
    timeout_s: int = 2,
    seconds: int = SECONDS,
) -> None:
    """ROUNDS alternating rounds of the same wrk run against each side."""
    runs = results.setdefault(key, {"conns": conns, "script": script, "rounds": {}})["rounds"]
    names = list(sides)
    for r in range(ROUNDS):
        for name in names if r % 2 == 0 else names[::-1]:
            extra = [a.replace("{round}", f"{r}{name[0]}") for a in args]
            run = wrk(sides[name].url, script, conns, seconds, *extra, timeout_s=timeout_s)
            runs.setdefault(name, []).append(run)
    log("  " + report.line(key, results[key]))


def warm(*servers: Server, script: str = "show.lua") -> None:
    for server in servers:
        wrk(server.url, script, 16, 2, str(ROWS))


def scenario_mysql(results: Results) -> None:
    ours = harness.uvicorn_server("ours-mariadb", 18101, our_url("bench_ours"), **OUR_POOL).start()
    base_url = baseline_url("bench_baseline")
    base = harness.gunicorn_server("baseline-mariadb", 18102, base_url).start()
    sides = {"ours": ours, "baseline": base}
    try:
        warm(ours, base)
        log("GET /show/{id} on MariaDB")
        for conns in CONCURRENCY:
            compare(results, f"read_mariadb_c{conns}", sides, "show.lua", conns, str(ROWS))
        profile_reads(results, ours)
        log("raw aiomysql ceiling (same SELECT, no HTTP)")
        raw_ceiling(results, ours)
        log("creates with hashing (POST /user/add)")
        # Creates take seconds each once hashes queue: a 10 s timeout, so none is cut short.
        compare(results, f"create_mariadb_c{CREATE_CONNS}", sides, "create.lua", CREATE_CONNS,
                "c{round}", timeout_s=10, seconds=2 * SECONDS)  # fmt: skip
        log("reads during a create burst (and ours with argon2 threads at nice 10)")
        nice = nice_hashing_server()
        try:
            create_burst(results, {**sides, "ours_nice_hashing": nice} if nice else sides)
        finally:
            if nice:
                nice.stop()
        log("90/10 read/write mix")
        compare(results, "mix_mariadb_c64", sides, "mix.lua", 64, str(ROWS), "m{round}",
                timeout_s=10, seconds=2 * SECONDS)  # fmt: skip
        asyncmy_variant(results, ours)
    finally:
        ours.stop()
        base.stop()


def raw_ceiling(results: Results, ours: Server) -> None:
    """Per round: the raw driver alone, then the API at the same concurrency, back to back."""
    raw: list[dict[str, Any]] = []
    api: list[dict[str, Any]] = []
    for _ in range(ROUNDS):
        with harness.CpuMeter(set(harness.SERVER_GROUPS)) as meter:
            out = subprocess.run(
                [sys.executable, "-m", "bench.raw_driver", "--rows", str(ROWS),
                 "--concurrency", "64", "--seconds", str(SECONDS)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        raw.append({**json.loads(out), "foreign_cpu": meter.foreign_share})
        api.append(wrk(ours.url, "show.lua", 64, SECONDS, str(ROWS)))
    results["raw_aiomysql_c64"] = {"conns": 64, "rounds": {"api": api, "raw": raw}}
    log("  " + report.line("raw_aiomysql_c64", results["raw_aiomysql_c64"]))


def nice_hashing_server() -> Server | None:
    """bench/nice_hashing.py: the proposal for app/security.py, if it still applies."""
    argv = [
        str(harness.BIN / "uvicorn"), "bench.nice_hashing:app", "--host", "127.0.0.1",
        "--port", "18110", "--workers", "2", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning", "--backlog", "4096",
    ]  # fmt: skip
    env = {"DATABASE_URL": our_url("bench_ours"), **OUR_POOL}
    try:
        return Server("ours-nice-hashing", argv, 18110, env).start()
    except RuntimeError as exc:
        log(f"  skipped: {exc}")
        return None


def create_burst(results: Results, sides: dict[str, Server]) -> None:
    """Per round: reads alone at c=16, then the same reads beside a create burst."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    window = 2 * SECONDS  # creates finish seconds apart: a short window sees a handful
    for r in range(min(ROUNDS, 3)):
        for name, server in sides.items():
            idle = wrk(server.url, "show.lua", 16, window, str(ROWS))
            burst: dict[str, Any] = {}
            writer = threading.Thread(
                target=lambda s=server, p=f"b{r}{name[0]}", out=burst: out.update(
                    creates=wrk(s.url, "create.lua", CREATE_CONNS, window, p, timeout_s=10)
                )
            )
            writer.start()
            reads = wrk(server.url, "show.lua", 16, window, str(ROWS))
            writer.join()
            side = out.setdefault(name, {"idle": [], "burst": [], "creates": []})
            side["idle"].append(idle)
            side["burst"].append(reads)
            side["creates"].append(burst["creates"])
    results["create_burst_c16"] = {"conns": 16, "sides": out}
    for name, side in out.items():
        ratio = statistics.median(
            b["p99_us"] / i["p99_us"] for b, i in zip(side["burst"], side["idle"], strict=True)
        )
        log(f"  {name}: read p99 during creates / idle read p99 = {ratio:.2f}")


def asyncmy_variant(results: Results, ours: Server) -> None:
    log("aiomysql vs asyncmy (ours, c=64)")
    url = our_url("bench_ours", driver="asyncmy")
    other = harness.uvicorn_server("ours-asyncmy", 18107, url, **OUR_POOL)
    try:
        other.start()
    except RuntimeError as exc:
        results["driver_c64"] = {"error": str(exc)}
        log(f"  asyncmy did not start: {exc}")
        return
    try:
        warm(other)
        compare(
            results, "driver_c64", {"aiomysql": ours, "asyncmy": other}, "show.lua", 64, str(ROWS)
        )
    finally:
        other.stop()


def profile_reads(results: Results, ours: Server) -> None:
    """py-spy on one worker during a c=64 read run (not one of the measured rounds)."""
    pid = ours.worker_pids()[0]
    raw = ROOT / "bench" / "out" / "profile-read.txt"
    spy = subprocess.Popen(
        [harness.BIN / "py-spy", "record", "--pid", str(pid), "--duration", str(SECONDS),
         "--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    wrk(ours.url, "show.lua", 64, SECONDS, str(ROWS))
    spy.wait(timeout=60)
    if raw.exists():
        results["profile_read"] = summarize_profile(raw)
        top = results["profile_read"]["layers"][:4]
        log("  profile: " + ", ".join(f"{n} {p:.0f}%" for n, p in top))


LAYERS = (
    ("socket writes to MariaDB (kernel TCP)", ("StreamWriter.write",)),
    ("password hashing (argon2)", ("argon2", "pwdlib")),
    ("driver (aiomysql/pymysql/asyncmy)", ("aiomysql", "pymysql", "asyncmy")),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("pydantic", ("pydantic",)),
    ("FastAPI routing/deps/serialization", ("fastapi",)),
    ("Starlette", ("starlette",)),
    ("uvicorn/httptools", ("uvicorn", "httptools")),
    ("app code", ("/app/",)),
    ("event loop (uvloop/asyncio)", ("uvloop", "asyncio")),
)


def summarize_profile(path: Path) -> dict[str, Any]:
    """Self time by layer (the innermost frame that belongs to a known layer) and top frames."""
    layers: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        parts = stack.split(";")
        frames[parts[-1]] += count
        for frame in reversed(parts):
            layer = next((name for name, keys in LAYERS if any(k in frame for k in keys)), None)
            if layer:
                layers[layer] += count
                break
        else:
            layers["other (idle, stdlib)"] += count
    pct = {name: 100 * n / total for name, n in layers.most_common()} if total else {}
    return {
        "samples": total,
        "layers": list(pct.items()),
        "top_frames": [(f, 100 * n / total) for f, n in frames.most_common(8)] if total else [],
    }


def scenario_sqlite(results: Results, secret: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp:
        ours_url, base_url = prepare_sqlite(Path(tmp), secret)
        ours = harness.uvicorn_server("ours-sqlite", 18103, ours_url).start()
        base = harness.gunicorn_server("baseline-sqlite", 18104, base_url).start()
        try:
            warm(ours, base)
            log("GET /show/{id} on SQLite")
            for conns in CONCURRENCY:
                compare(
                    results, f"read_sqlite_c{conns}", {"ours": ours, "baseline": base},
                    "show.lua", conns, str(ROWS),
                )  # fmt: skip
        finally:
            ours.stop()
            base.stop()


def round_trips(proxy_stats: Path, proxy: subprocess.Popen[bytes], server: Server) -> float:
    """Client-to-server chunks through the proxy per request, over 100 sequential GETs."""

    def chunks() -> int:
        proxy.send_signal(10)  # SIGUSR1: dump the counters
        time.sleep(0.3)
        return int(json.loads(proxy_stats.read_text())["client_chunks"])

    import urllib.request

    for n in range(1, 11):  # warm the pool first: connecting costs round trips too
        urllib.request.urlopen(f"{server.url}/show/{n}").read()  # noqa: S310
    before = chunks()
    for n in range(1, 101):
        urllib.request.urlopen(f"{server.url}/show/{n}").read()  # noqa: S310
    return (chunks() - before) / 100


def scenario_latency(results: Results) -> None:
    stats = ROOT / "bench" / "out" / "proxy-stats.json"
    proxy = subprocess.Popen(
        [sys.executable, "-m", "bench.delay_proxy", "--listen", str(PROXY_PORT),
         "--rtt-ms", str(RTT_MS), "--stats", str(stats)],
        cwd=ROOT,
    )  # fmt: skip
    time.sleep(1)
    ours = harness.uvicorn_server("ours-5ms", 18105, our_url("bench_ours", PROXY_PORT), **OUR_POOL)
    base_url = baseline_url("bench_baseline", PROXY_PORT)
    base = harness.gunicorn_server("baseline-5ms", 18106, base_url)
    direct = harness.uvicorn_server("ours-direct", 18109, our_url("bench_ours"), **OUR_POOL)
    try:
        ours.start()
        base.start()
        direct.start()
        results["round_trips"] = {
            "ours": round_trips(stats, proxy, ours),
            "baseline": round_trips(stats, proxy, base),
        }
        log(f"  database round trips per GET: {results['round_trips']}")
        warm(ours, base, direct)
        log(f"GET /show/{{id}} with {RTT_MS:g} ms database round trip (and ours without it)")
        cpu_before, started = process_cpu_s(proxy.pid), time.monotonic()
        sides = {"ours": ours, "baseline": base, "ours_direct": direct}
        for conns in (64, 256):
            compare(results, f"read_5ms_c{conns}", sides, "show.lua", conns, str(ROWS))
        results["proxy_cpu_share"] = (process_cpu_s(proxy.pid) - cpu_before) / (
            time.monotonic() - started
        )
        log(f"  the delay proxy used {results['proxy_cpu_share']:.0%} of a core meanwhile")
    finally:
        ours.stop()
        base.stop()
        direct.stop()
        proxy.terminate()
        proxy.wait()


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scenario_hashing(results: Results) -> None:
    from app.security import _password_hash

    hasher = _password_hash()
    hasher.hash(PASSWORD)
    n = 20
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        hasher.hash(PASSWORD)
    wall, cpu = (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n
    cores = os.cpu_count() or 1
    results["hashing"] = {
        "wall_s": wall, "cpu_s": cpu, "cores": cores, "ceiling_per_s": cores / cpu,
    }  # fmt: skip
    log(f"argon2id: {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU per hash; "
        f"ceiling {cores} cores / CPU time = {cores / cpu:.1f} hashes/s")  # fmt: skip


def scenario_migration(results: Results, secret: str) -> None:
    """0002 up then down on MIGRATION_ROWS rows while the previous release serves reads."""
    db = "bench_migrate"
    url = our_url(db)
    log(f"migration: {MIGRATION_ROWS} rows in {db}, 0001 -> 0002 -> 0001 under c=16 reads")
    harness.recreate_mysql_database(db)
    harness.alembic(url, "upgrade", "0001")
    started = time.perf_counter()
    harness.fill_mysql(db, MIGRATION_ROWS, "password_hash", secret, email=False)
    log(f"  filled in {time.perf_counter() - started:.1f} s")
    argv = [
        str(harness.BIN / "uvicorn"), "bench.prev_release:app", "--host", "127.0.0.1",
        "--port", "18108", "--workers", "2", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = Server("prev-release-migration", argv, 18108, {"DATABASE_URL": url, **OUR_POOL})
    server.start()
    duration = max(3 * SECONDS, 12)
    timings: dict[str, float] = {}

    def migrate() -> None:
        time.sleep(duration * 0.25)
        timings["upgrade_s"] = harness.alembic(url, "upgrade", "0002")
        time.sleep(duration * 0.25)
        timings["downgrade_s"] = harness.alembic(url, "downgrade", "0001")

    try:
        warm(server)
        # The same load without a migration first: the latency the machine gives anyway.
        control = harness.wrk(server.url, "show.lua", 16, duration, str(MIGRATION_ROWS))
        migrator = threading.Thread(target=migrate)
        migrator.start()
        load = harness.wrk(server.url, "show.lua", 16, duration, str(MIGRATION_ROWS))
        migrator.join()
    finally:
        server.stop()
        harness.drop_mysql_database(db)
    results["migration"] = {"rows": MIGRATION_ROWS, "load": load, "control": control, **timings}
    log(f"  upgrade {timings['upgrade_s']:.2f} s, downgrade {timings['downgrade_s']:.2f} s; "
        f"{load['requests']} requests, {load['errors']} failed, "
        f"max latency {load['max_us'] / 1000:.0f} ms (without a migration: "
        f"{control['max_us'] / 1000:.0f} ms)")  # fmt: skip


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    wrk_out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    wrk_version = wrk_out.split("\n")[0]
    from importlib.metadata import version

    packages = ["fastapi", "starlette", "uvicorn", "sqlalchemy", "aiomysql", "asyncmy", "pydantic",
                "flask", "flask-sqlalchemy", "gunicorn", "pymysql"]  # fmt: skip
    return {
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "mariadb": harness.wait_for_mysql(),
        "wrk": wrk_version.strip(),
        "packages": ", ".join(f"{p} {version(p)}" for p in packages),
    }


def main() -> None:
    started = time.time()
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    harness.ensure_wrk()
    results: Results = defaultdict(dict)
    results["machine"] = machine()
    results["config"] = {"rounds": ROUNDS, "seconds": SECONDS, "rows": ROWS}
    secret = password_hash()
    prepare_mysql(secret)
    scenario_hashing(results)
    scenario_mysql(results)
    scenario_latency(results)
    scenario_sqlite(results, secret)
    scenario_migration(results, secret)
    harness.drop_mysql_database("bench_ours")
    harness.drop_mysql_database("bench_baseline")
    results["config"]["elapsed_s"] = time.time() - started
    out = ROOT / "bench" / "out" / "results.json"
    out.write_text(json.dumps(results, indent=1))
    report.write(results)
    log(f"done in {results['config']['elapsed_s'] / 60:.1f} min: docs/benchmarks.md")


if __name__ == "__main__":
    main()
