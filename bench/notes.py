"""The prose of docs/benchmarks.md that explains the figures: limits, profile, what changed.

Numbers come from the results of the same run; the reasoning is what the profiles and the
experiments behind the app changes showed.
"""

import statistics
from typing import Any


def _layer(results: dict[str, Any], prefix: str) -> float:
    for name, pct in results.get("profile_read", {}).get("layers", []):
        if name.startswith(prefix):
            return float(pct)
    return 0.0


def _med(runs: list[dict[str, Any]], field: str = "rps") -> float:
    return statistics.median(float(r[field]) for r in runs)


def _create_cpu(entry: dict[str, Any]) -> str:
    return (
        f"measured per create: {entry['hashing_threads_ms']:.1f} ms in the hashing threads, "
        f"{entry['loop_ms']:.1f} ms in the event loops, {entry['mariadb_ms']:.1f} ms in "
        f"MariaDB, {entry['wrk_ms']:.1f} ms in wrk"
    )


def goal_notes(results: dict[str, Any]) -> str:
    sock = _layer(results, "socket writes")
    asgi = sum(_layer(results, p) for p in ("FastAPI", "Starlette", "uvicorn", "app code"))
    sqla = _layer(results, "SQLAlchemy")
    driver = _layer(results, "driver")
    loop = _layer(results, "event loop")
    share = results.get("proxy_cpu_share", 0.0)
    h = results.get("hashing", {})
    c64 = results.get("read_mariadb_c64", {}).get("rounds", {})
    busy = [r.get("foreign_cpu", 0.0) for runs in c64.values() for r in runs]
    c64_busy = statistics.median(busy) if busy else 0.0
    per_cpu_text = "see the table below."
    burst = results.get("create_burst_c16", {}).get("sides", {})
    if "ours" in burst and "ours_hash_threads_per_cpu" in burst:
        std, per_cpu = burst["ours"], burst["ours_hash_threads_per_cpu"]
        per_cpu_text = (
            f"the read p99 during the burst was {_med(per_cpu['burst'], 'p99_us') / 1000:.0f} "
            f"ms against {_med(std['burst'], 'p99_us') / 1000:.0f} ms at the default, with "
            f"{_med(per_cpu['creates']):.1f} against {_med(std['creates']):.1f} creates/s "
            "meanwhile."
        )
    lines = [
        "### What limits each figure",
        "",
        "- **Reads are CPU-bound, and the CPU is shared.** wrk, MariaDB and both workers run on "
        "the same 2 cores (and, in this workplace, other engineers' test runs). In the profile "
        f"below, {sock:.0f}% of a worker's samples are socket writes to MariaDB (on loopback "
        "the sender's syscall runs the receiver's TCP path too), "
        f"{asgi:.0f}% the HTTP/ASGI stack (uvicorn, Starlette, FastAPI routing and dependency "
        "solving, the service's one edge layer, FastAPI's own body-limit and telemetry "
        f"layers), {sqla:.0f}% SQLAlchemy (the pooled checkout: the statement itself runs on "
        f"the driver's cursor), {driver:.0f}% the driver's protocol code and {loop:.0f}% the "
        "event loop itself. The read already costs one round trip, down from four, and about "
        "500 µs of CPU in-process, down from about 950 (see *What changed*). What would move "
        "it further is FastAPI's per-route machinery: the same read as a plain Starlette "
        "route measured about 400 µs in-process against 500, but would give up the route's "
        "declared validation, dependencies and OpenAPI description. During this run's c=64 "
        "MariaDB "
        f"rounds other processes took {c64_busy:.0%} of the machine. Over the four full runs "
        "made while tuning (with the code at different stages and 30-70% of the machine taken "
        "by others) the c=64 ratio came out anywhere from 0.7x to 1.9x: one run does not "
        "settle this goal on a shared machine.",
        "- **p99 against the baseline.** gunicorn's sync workers close the connection after "
        "each response, so every request queues in the kernel's accept queue and is served "
        "first come, first served: a narrow latency spread at a lower rate. An async worker "
        "keeps its 32 keep-alive connections and interleaves their requests; when a core is "
        "taken by MariaDB, wrk or another process, every request in flight on that worker "
        "waits, which widens the tail: a wider spread at a higher rate.",
        "- **5 ms round trips.** A read holds a connection for one round trip (~5 ms), and "
        "the read pool holds 20 connections per worker: about 8,000 reads/s, far above what "
        "the CPU serves, so the latency is hidden as far as the CPU allows. What is left of "
        "the gap "
        f"is CPU: the delay proxy itself used {share:.0%} of a core, taken from the same two. "
        "The baseline's sync workers wait out every round trip, three per read, and at c=256 "
        "its queue passes wrk's 2 s timeout. Ours would queue for the pool past its 2 s "
        "timeout too, were the wait not first come, first served (see *What changed*).",
    ]
    if h:
        parameters = h.get("parameters", "m=64 MiB, t=3, p=4")
        lines.append(
            f"- **Creates.** One argon2id hash ({parameters}: OWASP's Password Storage Cheat "
            f"Sheet configuration, the default since issue 9) takes {h['cpu_s'] * 1000:.1f} ms "
            f"of CPU alone and {h.get('shared_cpu_s', h['cpu_s']) * 1000:.1f} ms with every "
            "core hashing (the hashes share the memory bandwidth and cache), so "
            f"{h['cores']} cores make at most {h['ceiling_per_s']:.1f} hashes/s "
            "even with nothing else running; the create runs share those cores with wrk, "
            "MariaDB and the rest of each request (HTTP, the insert and its commit), which at "
            "this hash cost is no longer negligible beside it"
            + (f" ({_create_cpu(results['create_cpu'])})" if "create_cpu" in results else "")
            + ". A 0.9 share of the ceiling would leave 10% of the CPU, about 2 ms a create, "
            "for everything but the hash: MariaDB's insert and commit alone take more than half "
            "of that on the same cores, and the hash itself costs more beside a busy event loop "
            "and database than beside another hash. Before, pwdlib's defaults (m=64 "
            "MiB, t=3, p=4) took 243 ms of CPU a hash: 7.5 creates/s against a ceiling of 8.2. "
            "Each worker hashes on a CPU slot of its own and borrows another worker's while "
            "that one is idle (app/cpu_slots.py), so a round in which one worker holds all of "
            "wrk's 8 keep-alive connections still hashes on both cores; with one hashing thread "
            "per worker, as before, such rounds made half the creates (the *Connections per "
            "worker* note below). "
            "The baseline stores the tutorial's plaintext password, so its creates and its "
            "90/10 mix are bound by MariaDB's commits, not by hashing: the ratios for those "
            "rows compare different work. Ours' failed requests in the mix, if any, are "
            "creates that waited past the hashing queue's bounds (503 with Retry-After, the "
            "service's answer to a hashing backlog) or past wrk's 10 s timeout."
        )
        lines.append(
            "- **Logins.** A login verifies one hash in the same bounded pool (a verification "
            "costs what a hash does, so the same ceiling bounds logins/s), and besides reads "
            "the account, counts the attempt in the login throttle, resets it and writes a "
            "session: four short transactions, which at this hash cost are a visible share of "
            "each login. The baseline has no login to compare with."
        )
    lines += openloop_notes(results)
    lines += [
        "- **Reads during a create burst.** HASH_THREADS=0 runs at most one hash per CPU "
        "across all workers (a CPU slot each, app/cpu_slots.py): with 2 workers on 2 cores, "
        "each core runs at most one hash beside its event loop, and a loop and its hasher "
        "share the core evenly when both want it. The bench also runs "
        "the service as it was before, one hashing thread per CPU in every worker "
        "(HASH_THREADS=2, 4 hashes at once on 2 cores, 'the service with one hashing thread "
        f"per CPU in each worker' in the table below): {per_cpu_text} That is the trade the "
        "hashers' share of the CPU makes. wrk's c=16 reads are a closed loop that saturates "
        "both cores, so whatever hashing takes the reads lose, and at a fixed 16 connections "
        "a read's latency grows as their share shrinks. Creates at 0.5 of the ceiling need "
        "about half the cores for hashing, which by Little's law already doubles the reads' "
        "mean latency, so the two goals cannot both be met for this load on two cores. "
        "HASH_THREAD_NICE (default 0) lowers the hashers' priority further: at nice 10, reads "
        "stay near idle latency with a tenth to a quarter of the creates.",
        "- **Raw-driver ceiling.** The ceiling runs one autocommit SELECT per round trip in a "
        "tight loop with no HTTP at all. An API read makes the same single round trip but adds "
        "HTTP parsing, routing, path validation, the edge layer, the pooled checkout and "
        "serialisation: several times the driver's own CPU per request (in-process, about "
        "130 µs for the driver's query against about 500 µs for the whole read), on the same "
        "cores that must also run MariaDB and wrk. Reaching a third of the ceiling would take "
        "a lighter stack than FastAPI's route machinery (a bare Starlette route), not a "
        "database change.",
        "- **Migration 0002 on 1M rows.** Both ALTERs are `ALGORITHM=INSTANT` on MariaDB: a "
        "metadata change, no table copy, whatever the row count. The downgrade also copies the "
        "emails into its archive first: triggers mirror every write into it while the copy runs "
        "in 10,000-row chunks, and the table is locked only for the `DROP COLUMN` "
        "(docs/migrations.md), so its time grows with the rows but readers do not wait for it. "
        "What readers can feel is the brief exclusive metadata lock; the table shows the same "
        "load run with no migration "
        "beside it, so the difference is what the migration costs. The readers are the "
        "previous release (bench/prev_release.py), as in a real expand/contract deploy: the "
        "service's own code reads `email`, so it cannot serve while the column is missing.",
        "- **Backfill 0005 on 1M rows.** The previous release serves c=16 reads and registers "
        "two users a second (argon2 hashes on the same cores) while 0005 adds `username_key` "
        "(INSTANT), keys every user in committed batches of MIGRATION_BACKFILL_BATCH_SIZE (500) "
        "rows, builds the unique index with ALGORITHM=INPLACE, LOCK=NONE (the build is the "
        "look-alike check: it sorts the keys once, where a GROUP BY over the unindexed column "
        "took 14 s), and keys the users registered meanwhile. Reads run as back-to-back wrk runs "
        "for as long as the migration takes. Each batch is one UPDATE by primary key: it locks "
        "only its own rows for milliseconds, and plain reads never wait for row locks (MVCC). "
        "Users registered after the last pass are counted (`backfill-keys` keys them). The "
        "1M-row fill is written back to disk before the load starts (its ~3,800 dirty pages "
        "were flushed during the first seconds of the migration, where one run's slowest create "
        "fell before the migration began), and the same reads and creates run 10 s without a "
        "migration first: what the load alone makes of the slowest request on these cores. The "
        "slowest requests come at any phase of the backfill; the online index build alone, "
        "measured on its own under the same reads, took 0.47 s with no read over 90 ms. "
        "MIGRATION_BACKFILL_PAUSE_S=0.01 (a 10 ms pause after each 500-row batch) doubled the "
        "backfill's time (46-48 s) and in 7 runs kept the slowest read at 126-228 ms, the "
        "slowest create at 137-222 ms; without it, 10 runs (5 before the fill was written back "
        "first) gave 149-310 ms and 134-220 ms. The default stays 0: a pause moved the tail "
        "little, and `BENCH_ONLY=backfill` with the variable set measures it on another machine.",
        "- **SQLite.** Both sides read through SQLite in WAL mode. Ours reads from a pool of "
        "its own (`query_only` connections, `DB_POOL_SIZE` per worker, served in arrival "
        "order), and runs each primary-key read on the driver's cursor (app/point_reads.py) "
        "with one hand-off to the connection's thread and back (app/db_sqlite.py). Through "
        "SQLAlchemy, aiosqlite made that five hand-offs, each about 45 µs of CPU against 8 µs "
        "for the query. The baseline calls sqlite3 in the worker itself. With no network in "
        "between, the async side has nothing to overlap, so what limits it is CPU per "
        "request: the one remaining hand-off, checking out and returning the pooled "
        "connection, and the HTTP stack. At c=256 each worker's 128 requests queue at the "
        "read pool's gate (20 connections), which keeps p99 to the length of that queue.",
    ]
    return "\n".join(lines)


def _rss_mib(runs: list[dict[str, Any]]) -> float:
    sizes = [statistics.mean(r["rss_kib"]) / 1024 for r in runs if r.get("rss_kib")]
    return float(statistics.median(sizes))


def openloop_notes(results: dict[str, Any]) -> list[str]:
    """How the fixed-rate figures are made and what bounds them; the memory figures."""
    e = results.get("openloop_c64")
    if not e:
        return []
    runs = [r for side in e["rounds"].values() for r in side]
    cpu = _med(runs, "gen_cpu")
    lines = [
        "- **Fixed rate (open loop).** wrk is closed-loop: each of its connections sends the "
        "next request only when the last one is answered, so while a server stalls (a "
        "garbage collection, a core taken by another process) wrk sends nothing, and a stall "
        "of 100 ms shows as one slow request per connection instead of the ~100 ms x rate "
        "requests a real client population would have sent into it (coordinated omission). "
        "bench/openloop.py sends GET /show/{id} at a fixed rate instead: request i is due at "
        "start + i / rate, whatever the server does, and its latency counts from that due "
        "time, so a request that waited for a free connection, or went out late, counts the "
        f"wait. The rate is {e.get('share', 0.8):.0%} of the tutorial's c=64 req/s from "
        f"{e['capacity_from']} ({e['capacity']:,.0f} req/s), the same for all sides. Up to 64 "
        "connections, opened as requests need them and then used in turn while the server "
        "keeps them alive (ours does; gunicorn's sync workers close each one, so every "
        "baseline request pays a new connection, as under wrk). A request unanswered 2 s "
        "after it was due is abandoned, counted as failed and recorded at that age: where a "
        "side failed more than 0.1% of its requests its p99.9 is a lower bound, and the goal "
        "counts only when ours is real. 'Failed' also counts non-2xx answers (ours answers "
        "503 when its pool or deadline gives up), whose latency counts like any other's. "
        "Each round runs twice BENCH_SECONDS, so p99.9 rests on "
        "the slowest ten or so of each round's requests: read the round ranges.",
        "- **The generator's own cost.** wrk2, the usual fixed-rate tool, is not in Debian's "
        "packages (only wrk is), so the generator is under 300 lines of Python on uvloop, one "
        "process, with no HTTP library: one bytes template per request and a header scan per "
        f"answer. It used {cpu:.0%} of a core at this rate (median over all runs; each side's "
        "in the table above), taken from the same two cores as the servers and shown rather "
        "than hidden. It costs more against the tutorial, whose every request needs a new "
        "connection, than against ours' kept-alive ones, so the baseline's server has a little "
        "less CPU left: against a stub server that answers at once, one process sent 6,000 "
        "requests/s on kept-alive connections for 16% of a core, and 3,000/s with a new "
        "connection each for 42% (falling behind near 4,000/s), both above the rates here on "
        "this machine (BENCH_OPENLOOP_PROCS splits the load over more processes). Its timer "
        "wakes at most once a millisecond (a shorter sleep would spin "
        "and take CPU from the servers), so a request goes out up to ~1 ms after it is due; "
        "that lateness, on every side alike, is in the figures (about 0.5 ms on each p50) and "
        "the table gives its p99 and maximum. It runs at nice -5: at the servers' own "
        "priority, with both cores saturated, it was measured sending up to 120 ms late, "
        "which the figures would have charged to the server under test.",
        "- **Connections per worker.** uvicorn's workers share one listening socket and a "
        "kept-alive connection stays with the worker that accepted it, so the split of the "
        "64 connections between ours' two workers is whatever the accepts made of it (48/16 "
        "was seen while tuning this scenario; the table gives each round's, sampled halfway). "
        "A fixed rate sends the uneven share on: the worker holding most connections gets "
        "most requests and queues while the other idles, where wrk's closed loop would just "
        "send less through the busy one. Load from many clients spreads the same way behind "
        "any keep-alive proxy, so the figures keep it rather than reopen connections to even "
        "it out. gunicorn's sync workers accept one connection at a time, only when free, and "
        "close it after the answer: their load is balanced by construction.",
        "- **A fixed rate forgives nothing.** At 80% of a capacity measured on a shared "
        "machine, a spell in which other processes take more of the cores leaves the servers "
        "below the offered rate: the queue then grows for as long as the spell lasts and "
        "drains only at the spare 20%, where wrk would just have slowed down. Rounds with high "
        "'other load' show this as seconds-long tails and timeouts on every side.",
    ]
    mem = results.get("memory_c64", {}).get("rounds", {})
    if {"ours", "baseline", "ours_gc_off"} <= set(mem):
        ours, base, off = (_rss_mib(mem[k]) for k in ("ours", "baseline", "ours_gc_off"))
        lines.append(
            f"- **Memory.** A worker of ours held {ours:,.0f} MiB under the c=64 load, the "
            f"tutorial's {base:,.0f} MiB: ours imports more (FastAPI, pydantic, SQLAlchemy, "
            "uvloop, argon2) and keeps two pools of up to 20 MariaDB connections each, where "
            "a sync worker holds one request and one connection at a time. The GC tuning "
            f"costs {ours - off:+.1f} MiB a worker against the service without it ({off:,.0f} "
            "MiB): freezing moves the start-up objects out of the collector's reach without "
            "copying them, and a young generation of 50,000 objects instead of 700 holds a few "
            "MiB more garbage between collections at most. RSS is sampled once at the end of "
            "each run, not as a peak."
        )
    return lines


def profile_section(results: dict[str, Any]) -> str:
    prof = results.get("profile_read")
    if not prof:
        return ""
    lines = [
        "## Profile: where a GET /show/{id} worker spends its time (c=64, MariaDB)",
        "",
        f"py-spy, {prof['samples']:,} samples of one uvicorn worker (idle time not sampled), "
        "self time by layer (the innermost frame that belongs to a known package):",
        "",
        "| layer | share of samples |",
        "|---|--:|",
    ]
    lines += [f"| {name} | {pct:.0f}% |" for name, pct in prof["layers"]]
    lines += ["", "Hottest frames (self time):", ""]
    lines += [f"- `{frame}` {pct:.1f}%" for frame, pct in prof["top_frames"]]
    return "\n".join(lines)


def changes_section() -> str:
    return "\n".join(
        [
            "## What changed in the service, and why",
            "",
            "Measured first (py-spy on a worker, and the delay proxy's count of client-to-server "
            "packets per request), then changed:",
            "",
            "- **No thread hand-off per request.** FastAPI runs a plain `def` dependency in its "
            "thread pool; `get_state` and three others were plain functions, so every request "
            "went to a worker thread and back. They are `async def` now (app/deps.py). With the "
            "next change, GET /show c=64 went from 1,870 to 2,630 req/s in a side-by-side wrk "
            "trial (2 workers, three 4 s rounds).",
            "- **Garbage collection off the tail.** After start-up the lifespan freezes every "
            "object alive (`gc.freeze()`) and raises the young generation's threshold from 700 "
            "to 50,000 allocations (`GC_FREEZE`, `GC_GEN0_THRESHOLD`; app/gc_tuning.py). In the "
            "same trial the c=64 p99 fell from 105 to 30 ms: collections reaching the older "
            "generations, walking every live object, made most of the tail.",
            "- **Round trips per read: 4 → 1.** A GET went pre-ping, SELECT, COMMIT, and the "
            "pool's reset-on-return ROLLBACK. Each socket write showed as ~5% of a worker's "
            "samples. `pool_pre_ping` is replaced by a checkout hook that pings only "
            "connections idle for over 1 s (`app/db_pool.py`, `ping_idle_connections`), with a "
            "LIFO pool so busy connections stay busy: a link the server dropped while idle is "
            "still replaced before use (`test_connections_dropped_after_wait_timeout_are_"
            "replaced`), and one dropped mid-load fails its query, invalidates the pool and "
            "answers 503 as before. Reads no longer commit or roll back: see the next points.",
            "- **Round trips per write: 3 → 2.** After the route's COMMIT the pool's "
            "reset-on-return sent a ROLLBACK that ended nothing: a registration was INSERT, "
            "COMMIT, ROLLBACK. The pool now resets a returned connection only when the server's "
            "in-transaction flag (kept by aiomysql from every answer) says a transaction is "
            "open (`rollback_only_open_transactions`, app/db_pool.py); an uncommitted "
            "transaction is still rolled back before reuse "
            "(tests/reliability/test_round_trips.py).",
            "- **Core, not the ORM, on hot reads.** `GET /show/{id}` and `GET /users/{id}` run "
            "one prebuilt `select(User.id, User.username, User.email)` on a pooled connection "
            "(`AppState.read_connection`, `app.crud.read_public_user`): no Session, no identity "
            "map, no transaction snapshot (a `WeakKeyDictionary` per request showed as ~6%). "
            "Writes keep the committing session dependency, so a 201 still means committed.",
            "- **An autocommit read pool (MariaDB).** Pooled MySQL engines get a second pool "
            "whose connections stay in autocommit, with SQLAlchemy's "
            "`skip_autocommit_rollback` (2.0.43+), used only by `read_connection`: the SELECT "
            "is the whole conversation. It is disposed with the main engine. Tried first and "
            "reverted: one autocommit pool with each session switched to REPEATABLE READ on "
            "checkout; that costs every write two more round trips, and SQLAlchemy runs the "
            "switch outside its error translation, so with the database cut a write got a raw "
            "driver error (500) and leaked its connection "
            "(tests/reliability/test_db_faults.py). The cost of the second pool: up to twice "
            "the connections per worker (each pool opens connections only as they are needed, "
            "and writes rarely need many).",
            "- **A first-come-first-served gate in front of the read pool.** With more requests "
            "than connections (c=256: 128 a worker, 20 connections), SQLAlchemy's asyncio "
            "queue hands a returned connection to whoever asks first, so a woken waiter can "
            "lose it to a newcomer and queue again: a few reads starved past the 2 s pool "
            "timeout (hundreds of 503s per c=256 run, p99 1.2-1.5 s). An asyncio.Semaphore "
            "sized to the pool (FIFO) now admits reads in arrival order, with the same timeout "
            "and the same 503 past it: 0 failed and p99 0.3-0.5 s in the same test.",
            "- **Pool sizing.** The former default pool (10 + 10 overflow per worker) opened "
            "~20 new connections a second under a steady c=64 read load: overflow connections "
            "are closed when returned to a full pool and reopened a moment later, each costing "
            "a handshake and three set-up queries. The bench runs the service with "
            "`DB_POOL_SIZE=20 DB_MAX_OVERFLOW=0` (20 kept connections a pool, per worker), "
            "which is now the default in app/config.py.",
            "- **Serving flags.** uvicorn picks uvloop and httptools by itself when installed "
            "(uvicorn[standard]); the bench names them, and turns off the access log "
            "(`--no-access-log`), which gunicorn does not write by default either.",
            "- **The hot read on the driver's cursor** (issue 13). SQLAlchemy compiles the "
            "primary-key SELECT once per dialect and hands out the pooled connection (its "
            "checkout events included); the statement then runs on the driver's own cursor "
            "(app/point_reads.py), skipping SQLAlchemy's per-statement machinery: greenlet "
            "hand-off, execution context, result metadata, Row objects. Measured in-process "
            "(the ASGI app called directly, 6,000 reads over 16 tasks): the Core read was about "
            "370 µs of CPU on its own, the driver's query about 130 µs. Errors still come out "
            "as SQLAlchemy's DBAPIError (the 503 handler and the 1213 retry see them as "
            "before), and a connection cancelled mid-query by the deadline is invalidated "
            "(tests/reliability/test_point_reads.py).",
            "- **One edge layer instead of eight middlewares** (issue 13). Request id, "
            "security headers, access line and metrics, Host check, deadline, write limit, "
            "body cap and duplicate JSON keys ran as eight ASGI middlewares, each a coroutine "
            "and a wrapped `send` per request; app/edge.py runs them, in the same order, as "
            "one. The read routes take one dependency (state and viewer) where they took "
            "three with sub-dependencies, and answer with the body pydantic-core serialises "
            "from the documented model, without validating it again. Together with the point "
            "read, and its own checkout from the read pool (no AsyncConnection around it): "
            "in-process CPU per read about 950 → 500 µs.",
            "- **SQLite reads** (issue 13): one thread hand-off per statement instead of five "
            "(app/db_sqlite.py), a pool of `query_only` read connections sized by "
            "`DB_POOL_SIZE` like MariaDB's (SQLite had SQLAlchemy's 5 + 10 default, whose "
            "overflow connections reopened all the time), and the point read on aiosqlite's "
            "cursor too.",
            "- **Hashing threads per worker** (issue 13): `HASH_THREADS=0` meant this "
            "worker's share of the CPUs (CPUs ÷ WEB_CONCURRENCY), one thread per worker here, "
            "not one per CPU in every worker: as many hashes at once as cores, as the ceiling "
            "measurement runs them, and each core's event loop beside at most one hash.",
            "- **CPU slots** (issue 9): `HASH_THREADS=0` now means a thread per CPU in every "
            "worker and one lock file per CPU shared by all workers (app/cpu_slots.py): each "
            "worker hashes on its own slot and borrows an idle one, so a worker holding all of "
            "wrk's 8 connections no longer leaves a core idle. `python -m bench.creates_split` "
            "runs both ways in alternating rounds: with the slots 86.6-89.6 creates/s (median "
            "88.1 = 0.83 of that run's 105.9/s ceiling), with one hasher per worker 88.4-92.5 "
            "(median 89.1 = 0.84), no round with all 8 connections on one worker that time; in "
            "earlier runs of the same comparison such rounds made 52.6-53.3/s with one hasher "
            "per worker and 85-90/s with the slots. Per-thread malloc arenas are why each slot "
            "has its own thread: argon2's 19 MiB passed between threads cost 10% more CPU a "
            "hash.",
            "- **The floor under the creates** (issue 9). `python -m bench.creates_floor` runs "
            "the service beside two apps that do only what a create must (bench/floor_apps.py): "
            "the same hashing pool, one autocommit INSERT on a plain aiomysql pool, no "
            "validation, middleware or SQLAlchemy; `fastapi` is one FastAPI route with a pydantic"
            " body, `bare` raw ASGI. It measures the ceiling again before every round (it moved "
            "between 109.8 and 125.6/s within minutes) and reads each round against its own. In "
            "10 rounds of 6 s: the service 0.81 of the ceiling (rounds 0.78-0.84), `fastapi` 0.86"
            " (0.82-0.90), `bare` 0.88 (0.84-0.92); event loop CPU per create 2.44, 1.14 and 0.86"
            " ms, hashing threads 18.1, 18.2 and 18.0 ms, MariaDB 0.5 ms each. The least a "
            "FastAPI route can be stays under 0.9 on these two cores, and raw ASGI only touches "
            "it: the 0.9 goal is out of reach of any create path on the fixed stack here, "
            "whatever the service trims. What the service spends above the `fastapi` floor (1.3 "
            "ms of loop CPU a create: its edge layer, validation and username key, the session "
            "with its COMMIT round trip) is worth 5-6% of the creates.",
            "- **Statement caching.** The hot SELECT is built once at import, so each request "
            "only looks up its compiled form in SQLAlchemy's cache.",
            "- **aiomysql vs asyncmy.** `mysql+asyncmy://` works as a DATABASE_URL as is (the "
            "table above has its figure, from alternating rounds); aiomysql stays the default: "
            "in this run's rounds and in the exploratory runs before, asyncmy's lead, where it "
            "had one, was within the noise of this shared machine. With two round trips per "
            "read and most CPU outside the driver (see the profile), the driver's protocol "
            "code is not where the time goes.",
        ]
    )
