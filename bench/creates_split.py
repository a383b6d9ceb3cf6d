"""`python -m bench.creates_split`: creates/s with the CPU slots (the default) against one
hashing thread per worker (HASH_THREADS=1, the default before), in alternating rounds, with how
uvicorn's accepts split wrk's 8 connections between the 2 workers in each round and the share
of the hashing ceiling (scenario `hashing`) each round reached.

The full `make bench` runs the creates once per round against the baseline; this compares the
two ways of sharing the CPUs among workers, where the split of the connections decides.
"""

import argparse
import statistics
import threading

from bench import harness
from bench.common import CREATE_CONNS, OUR_POOL, Results, our_url
from bench.harness import Server, wrk
from bench.scenarios.hashing import scenario_hashing

DATABASE = "bench_creates_split"
SIDES = {"cpu_slots": {}, "one_hasher_per_worker": {"HASH_THREADS": "1"}}


def one_round(server: Server, prefix: str, seconds: int) -> tuple[float, int, list[int]]:
    """(creates/s, failed requests, connections per worker sampled halfway)."""
    split: list[list[int]] = []
    sampler = threading.Timer(
        seconds / 2, lambda: split.append(harness.connections_per_worker(server))
    )
    sampler.start()
    run = wrk(server.url, "create.lua", CREATE_CONNS, seconds, prefix, timeout_s=10)
    sampler.join()
    return float(run["rps"]), int(run["errors"]), split[0] if split else []


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.creates_split", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    harness.ensure_wrk()
    results: Results = {}
    scenario_hashing(results)
    ceiling = results["hashing"]["ceiling_per_s"]
    harness.recreate_mysql_database(DATABASE)
    harness.alembic(our_url(DATABASE), "upgrade", "head")
    harness.fill_mysql(DATABASE, 1000, "password_hash", "unused", email=True)
    servers = {
        name: harness.uvicorn_server(
            f"creates-{name}", 18161 + i, our_url(DATABASE), **OUR_POOL, **env
        ).start()
        for i, (name, env) in enumerate(SIDES.items())
    }
    rates: dict[str, list[float]] = {name: [] for name in SIDES}
    try:
        for server in servers.values():
            wrk(server.url, "show.lua", 16, 2, "1000")
        for r in range(args.rounds):
            order = list(SIDES) if r % 2 == 0 else list(SIDES)[::-1]
            for name in order:
                # Usernames unique per round and side: a letter each, then wrk's thread and counter.
                prefix = chr(ord("a") + r % 26) + name[0]
                rate, failed, split = one_round(servers[name], prefix, args.seconds)
                rates[name].append(rate)
                print(f"round {r} {name:22s} {rate:6.1f}/s = {rate / ceiling:.2f} of the "
                      f"ceiling; connections per worker {split}, failed {failed}",
                      flush=True)  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
        harness.drop_mysql_database(DATABASE)
    for name, values in rates.items():
        print(f"{name:22s} median {statistics.median(values):6.1f}/s = "
              f"{statistics.median(values) / ceiling:.2f} of {ceiling:.1f}/s; "
              f"lowest round {min(values):.1f}/s = {min(values) / ceiling:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
