"""Scenario `login`: POST /auth/login on MariaDB, logins/s against the hashing ceiling.

Each login verifies one argon2id hash (in the same bounded pool as registrations), counts the
attempt in the login throttle and resets it, and writes a session row. The baseline has no
login, so this is ours alone; the figure to read is logins/s as a share of the hashing ceiling.
"""

import statistics

from bench import harness
from bench.common import CREATE_CONNS, OUR_POOL, ROUNDS, ROWS, SECONDS, Results, our_url, warm
from bench.harness import log, wrk
from bench.report import line

PORT = 18111


def scenario_login(results: Results) -> None:
    server = harness.uvicorn_server("ours-login", PORT, our_url("bench_ours"), **OUR_POOL)
    server.start()
    try:
        warm(server)
        log(f"logins (POST /auth/login, c={CREATE_CONNS})")
        runs = [
            wrk(server.url, "login.lua", CREATE_CONNS, 2 * SECONDS, str(ROWS), timeout_s=10)
            for _ in range(ROUNDS)
        ]
    finally:
        server.stop()
    entry = {"conns": CREATE_CONNS, "script": "login.lua", "rounds": {"ours": runs}}
    results[f"login_mariadb_c{CREATE_CONNS}"] = entry
    log("  " + line(f"login_mariadb_c{CREATE_CONNS}", entry))
    ceiling = results.get("hashing", {}).get("ceiling_per_s")
    if ceiling:
        rate = statistics.median(r["rps"] for r in runs)
        log(f"  {rate:.1f} logins/s = {rate / ceiling:.2f} of the hashing ceiling {ceiling:.1f}/s")
