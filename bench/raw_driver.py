"""The raw-driver ceiling: the service's SELECT by primary key through aiomysql alone, no HTTP.

Two processes (one per core, as the service has two workers) each keep `concurrency / 2`
connections busy for `seconds` in autocommit mode (one round trip a query), and the figure is
the queries per second both achieve together. Prints one JSON line.
"""

import argparse
import asyncio
import json
import multiprocessing
import random
import time
from typing import Any

import aiomysql
import uvloop

QUERY = "SELECT id, username, email FROM user_list WHERE id = %s"


async def _worker(args: argparse.Namespace, connections: int) -> tuple[int, list[float]]:
    count = 0
    latencies: list[float] = []
    stop = time.perf_counter() + args.seconds

    async def one() -> None:
        nonlocal count
        conn = await aiomysql.connect(
            host=args.host, port=args.port, user="root", db=args.database, autocommit=True
        )
        try:
            async with conn.cursor() as cur:
                while (now := time.perf_counter()) < stop:
                    await cur.execute(QUERY, (random.randint(1, args.rows),))
                    await cur.fetchone()
                    count += 1
                    latencies.append(time.perf_counter() - now)
        finally:
            conn.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return count, latencies


def _process(args: argparse.Namespace, connections: int, out: Any) -> None:
    count, latencies = uvloop.run(_worker(args, connections))
    out.put((count, latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="bench_ours")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    queue: Any = multiprocessing.Queue()
    per_process = max(1, args.concurrency // args.processes)
    procs = [
        multiprocessing.Process(target=_process, args=(args, per_process, queue))
        for _ in range(args.processes)
    ]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    count = sum(r[0] for r in results)
    latencies = sorted(x for r in results for x in r[1])
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
    print(json.dumps({
        "rps": count / args.seconds, "requests": count, "p99_us": int(p99 * 1e6),
        "max_us": int(latencies[-1] * 1e6) if latencies else 0, "errors": 0,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
