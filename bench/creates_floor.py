"""`python -m bench.creates_floor`: the service's creates/s beside the floors under them, each as a
share of the hashing ceiling, in alternating rounds. The floors (bench/floor_apps.py) hash in the
same pool and store the row with one autocommit INSERT, nothing else: `fastapi` is one FastAPI
route with a pydantic body, the least the fixed stack allows; `bare` is raw ASGI, no framework.

The ceiling (usable cores / CPU time per hash with every core hashing, as in scenario `hashing`)
moves by several per cent from minute to minute on a shared machine, so every round measures it
again and reads both sides' creates against that round's own figure. Each round also splits one
create's CPU into the workers' event loops, their hashing threads and MariaDB: what the layers
above the floor cost, and what even the floor spends beside the hash.
"""

import argparse
import os
import statistics
from dataclasses import dataclass

from bench import harness
from bench.common import CREATE_CONNS, OUR_POOL, our_url
from bench.harness import BIN, QUIET, Server, log, wrk
from bench.scenarios.hashing import ceiling_now

DATABASE = "bench_creates_floor"
CEILING_S = 3.0  # each core hashes this long to measure a round's ceiling


@dataclass
class Round:
    """One side's create run: its rate, that round's ceiling and one create's CPU (ms)."""

    rate: float
    ceiling: float
    loop_ms: float
    hashing_ms: float
    mariadb_ms: float
    failed: int

    @property
    def share(self) -> float:
        return self.rate / self.ceiling


FLOORS = {"fastapi": "bench.floor_apps:fastapi_app", "bare": "bench.floor_apps:bare_app"}


def floor_server(name: str, port: int, database: str) -> Server:
    argv = [
        str(BIN / "uvicorn"), FLOORS[name], "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning", "--backlog", "4096",
    ]  # fmt: skip
    return Server(f"creates-floor-{name}", argv, port, {"DATABASE_URL": our_url(database), **QUIET})


def create_run(server: Server, prefix: str, seconds: int, ceiling: float) -> Round:
    run, cpu = harness.cpu_per_request_ms(
        server,
        lambda: wrk(server.url, "create.lua", CREATE_CONNS, seconds, prefix, timeout_s=10),
    )
    return Round(
        rate=float(run["rps"]),
        ceiling=ceiling,
        loop_ms=cpu["loop_ms"],
        hashing_ms=cpu["hashing_threads_ms"],
        mariadb_ms=cpu["mariadb_ms"],
        failed=int(run["errors"]),
    )


def summary(name: str, rounds: list[Round]) -> str:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    shares = [r.share for r in rounds]
    return (
        f"{name:8s} median {med([r.rate for r in rounds]):6.1f} creates/s = {med(shares):.2f} "
        f"of the ceiling (rounds {min(shares):.2f}-{max(shares):.2f}); CPU per create: loop "
        f"{med([r.loop_ms for r in rounds]):.2f} ms, hashing threads "
        f"{med([r.hashing_ms for r in rounds]):.2f} ms, MariaDB "
        f"{med([r.mariadb_ms for r in rounds]):.2f} ms; failed {sum(r.failed for r in rounds)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.creates_floor", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    harness.ensure_wrk()
    (harness.ROOT / "bench" / "out").mkdir(exist_ok=True)
    harness.recreate_mysql_database(DATABASE)
    harness.alembic(our_url(DATABASE), "upgrade", "head")
    harness.fill_mysql(DATABASE, 1000, "password_hash", "unused", email=True)
    sides = {
        "service": harness.uvicorn_server(
            "creates-service", 18171, our_url(DATABASE), **OUR_POOL
        ).start(),
        **{name: floor_server(name, 18172 + i, DATABASE).start() for i, name in enumerate(FLOORS)},
    }
    rounds: dict[str, list[Round]] = {name: [] for name in sides}
    try:
        for server in sides.values():  # warm: pools filled, hashing threads started
            wrk(server.url, "create.lua", CREATE_CONNS, 2, f"w{server.port}", timeout_s=10)
        for r in range(args.rounds):
            ceiling = ceiling_now(CEILING_S)
            # Each round in another order, so that no side always follows the same one.
            order = list(sides)[r % len(sides) :] + list(sides)[: r % len(sides)]
            for name in order:
                # Usernames unique per round and side: two letters, then wrk's thread and count.
                prefix = chr(ord("a") + r % 26) + name[0] + f"{os.getpid() % 100}"
                result = create_run(sides[name], prefix, args.seconds, ceiling)
                rounds[name].append(result)
                log(f"round {r} {name:8s} {result.rate:6.1f}/s = {result.share:.3f} of "
                    f"{ceiling:.1f}/s; CPU per create: loop {result.loop_ms:.2f} ms, hashing "
                    f"{result.hashing_ms:.2f} ms, MariaDB {result.mariadb_ms:.2f} ms; "
                    f"failed {result.failed}")  # fmt: skip
    finally:
        for server in sides.values():
            server.stop()
        harness.drop_mysql_database(DATABASE)
    for name, results in rounds.items():
        print(summary(name, results), flush=True)


if __name__ == "__main__":
    main()
