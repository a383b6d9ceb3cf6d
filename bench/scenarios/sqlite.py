"""Scenario `sqlite`: GET /show/{id} with both sides on fresh SQLite files."""

import tempfile
from pathlib import Path

from bench import harness
from bench.common import CONCURRENCY, PASSWORD, ROWS, Results, compare, warm
from bench.harness import log


def prepare_sqlite(directory: Path, secret: str) -> tuple[str, str]:
    ours, baseline = directory / "ours.db", directory / "baseline.db"
    ours_url, base_url = f"sqlite+aiosqlite:///{ours}", f"sqlite:///{baseline}"
    harness.alembic(ours_url, "upgrade", "head")
    harness.fill_sqlite(ours, ROWS, "password_hash", secret)
    harness.create_baseline_schema(base_url)
    harness.fill_sqlite(baseline, ROWS, "password", PASSWORD)
    return ours_url, base_url


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
