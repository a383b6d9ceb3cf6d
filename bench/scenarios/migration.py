"""Scenario `migration`: 0002 up and down on a large table while the previous release serves."""

import threading
import time

from bench import harness
from bench.common import MIGRATION_ROWS, OUR_POOL, SECONDS, Results, our_url, warm
from bench.harness import Server, log


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
