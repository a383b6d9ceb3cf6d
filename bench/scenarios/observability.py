"""Scenario `observability`: what JSON access logs and Prometheus metrics cost a read.

GET /show/{id} at c=64 on MariaDB, three servers in alternating rounds: `ours` as every other
scenario runs it (no access log, no metrics), `ours_observed` the same command with an access
line per request (JSON, to a file) and multiprocess metrics on (PROMETHEUS_MULTIPROC_DIR), and
`ours_production`, the service as `python -m app.serve` starts it (those two plus the header
bounds of app/http_protocol.py). The ratio observed/ours is the cost of logs and metrics.
"""

import tempfile

from bench import harness
from bench.common import OUR_POOL, ROWS, Results, compare, our_url, warm
from bench.harness import BIN, Server, log

OBSERVED = {"ACCESS_LOG": "true", "METRICS_ENABLED": "true"}


def production_server(name: str, port: int, database_url: str, metrics_dir: str) -> Server:
    argv = [str(BIN / "python"), "-m", "app.serve", "--port", str(port), "--workers", "2"]
    env = {"DATABASE_URL": database_url, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, **OUR_POOL}
    return Server(name, argv, port, env)


def scenario_observability(results: Results) -> None:
    url = our_url("bench_ours")
    with (
        tempfile.TemporaryDirectory(prefix="bench-metrics-") as observed_dir,
        tempfile.TemporaryDirectory(prefix="bench-metrics-") as production_dir,
    ):
        plain = harness.uvicorn_server("ours-plain", 18111, url, **OUR_POOL)
        observed = harness.uvicorn_server(
            "ours-observed", 18112, url, **OUR_POOL, **OBSERVED,
            PROMETHEUS_MULTIPROC_DIR=observed_dir,
        )  # fmt: skip
        production = production_server("ours-production", 18113, url, production_dir)
        servers = [plain.start(), observed.start(), production.start()]
        try:
            warm(*servers)
            log("GET /show/{id} c=64: JSON access logs and metrics on, against off")
            compare(
                results, "observability_c64",
                {"ours": plain, "ours_observed": observed, "ours_production": production},
                "show.lua", 64, str(ROWS),
            )  # fmt: skip
        finally:
            for server in servers:
                server.stop()
