"""Turn bench/out/results.json into docs/benchmarks.md and docs/benchmarks.png.

`python -m bench.report` rewrites both from the last results without running anything.
"""
# ruff: noqa: RUF001  (multiplication signs are meant: this writes prose)

import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Not bench.harness's ROOT: the report imports no process plumbing (tests read it alone).
ROOT = Path(__file__).resolve().parent.parent

DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks.png"


def med(runs: list[dict[str, Any]], field: str = "rps") -> float:
    return statistics.median(float(r[field]) for r in runs)


def ratio(entry: dict[str, Any], a: str, b: str, field: str = "rps") -> float:
    """Median over rounds of a/b, each round's pair measured back to back."""
    pairs = zip(entry["rounds"][a], entry["rounds"][b], strict=True)
    return statistics.median(x[field] / y[field] if y[field] else float("inf") for x, y in pairs)


def ratio_range(entry: dict[str, Any], a: str, b: str) -> str:
    pairs = zip(entry["rounds"][a], entry["rounds"][b], strict=True)
    values = [x["rps"] / y["rps"] for x, y in pairs if y["rps"]]
    return f"{min(values):.2f}–{max(values):.2f}" if values else "-"


def foreign(runs: list[dict[str, Any]]) -> float:
    """Median share of the machine other processes used during these runs."""
    shares = [r["foreign_cpu"] for r in runs if "foreign_cpu" in r]
    return statistics.median(shares) if shares else 0.0


def line(key: str, entry: dict[str, Any]) -> str:
    rounds = entry["rounds"]
    parts = []
    for name, runs in rounds.items():
        failed = sum(r["errors"] for r in runs)
        parts.append(
            f"{name} {med(runs):,.0f} req/s p99 {med(runs, 'p99_us') / 1000:.1f} ms"
            + (f" failed {failed}" if failed else "")
        )
    names = list(rounds)
    if len(names) >= 2:
        parts.append(f"ratio {ratio(entry, names[0], names[1]):.2f}")
    everything = [r for runs in rounds.values() for r in runs]
    parts.append(f"other load {foreign(everything):.0%}")
    return f"{key}: " + "; ".join(parts)


def spread(runs: list[dict[str, Any]], field: str) -> str:
    """'min-max' over rounds of a latency field, in ms."""
    values = [r[field] / 1000 for r in runs]
    return f"{min(values):,.1f}–{max(values):,.1f}" if values else "-"


def rss_mib(runs: list[dict[str, Any]]) -> float:
    """Median over runs of the mean RSS per worker at the end of each run, MiB."""
    sizes = [statistics.mean(r["rss_kib"]) / 1024 for r in runs if r.get("rss_kib")]
    return float(statistics.median(sizes))


# The open-loop figures, as (field, label).
OPEN_POINTS = (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max"))


def openloop_line(entry: dict[str, Any]) -> str:
    """One line per side of the fixed-rate run: its percentiles, failures, the generator's CPU."""
    parts = []
    for name, runs in entry["rounds"].items():
        points = " ".join(f"{label} {_ms(med(runs, field))}" for field, label in OPEN_POINTS)
        parts.append(
            f"{name} {med(runs):,.0f}/s {points} ms failed {sum(r['errors'] for r in runs)}"
        )
    everything = [r for runs in entry["rounds"].values() for r in runs]
    parts.append(
        f"generator {med(everything, 'gen_cpu'):.0%} of a core, late p99 "
        f"{_ms(med(everything, 'lag_p99_us'))} ms; other load {foreign(everything):.0%}"
    )
    return f"openloop at {entry['rate']:,.0f} req/s: " + "; ".join(parts)


def _backfill_control(backfill: dict[str, Any]) -> str:
    """The backfill's load without a migration, when the run measured it: reads and creates
    (runs before the creates joined the control measured reads alone)."""
    control = backfill.get("control")
    if control is None:
        return ""
    if "creates" not in control:
        return f" (same reads without a migration: max {_ms(control['max_us'])} ms)"
    return (
        f" (same reads and creates without a migration: reads max {_ms(control['max_us'])} "
        f"ms, creates max {_ms(control['creates']['max_us'])} ms)"
    )


def paired_shares(entry: dict[str, Any]) -> list[float]:
    """Each round's creates/s of ours over the hashing ceiling measured just before it."""
    runs = entry["rounds"]["ours"]
    return [run["rps"] / c for run, c in zip(runs, entry["ceilings"], strict=True)]


def create_cpu_line(entry: dict[str, Any]) -> str:
    """Where one create's CPU went, and the creates/s that much CPU allows on every core."""
    parts = ("hashing_threads_ms", "loop_ms", "mariadb_ms", "wrk_ms")
    total = sum(entry[k] for k in parts)
    cores = os.cpu_count() or 1
    return (
        f"CPU per create {total:.1f} ms: hashing threads {entry['hashing_threads_ms']:.1f}, "
        f"event loops {entry['loop_ms']:.1f}, MariaDB {entry['mariadb_ms']:.1f}, wrk "
        f"{entry['wrk_ms']:.1f}; {cores} cores allow {1000 * cores / total:.0f}/s at that cost "
        f"({entry['creates_per_s']:.0f}/s in that run, other load {entry['foreign_cpu']:.0%})"
    )


def _ms(us: float) -> str:
    return f"{us / 1000:,.1f}"


def comparison_table(results: dict[str, Any], keys: list[tuple[str, str]]) -> list[str]:
    rows = [
        "| scenario | conns | ours req/s | baseline req/s | ours/baseline (round range) | "
        "ours p99 ms | baseline p99 ms | ours max ms | baseline max ms | "
        "failed (ours/baseline) | other load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, label in keys:
        entry = results.get(key)
        if not entry or "rounds" not in entry:
            continue
        ours, base = entry["rounds"]["ours"], entry["rounds"]["baseline"]
        rows.append(
            f"| {label} | {entry['conns']} | {med(ours):,.0f} | {med(base):,.0f} | "
            f"**{ratio(entry, 'ours', 'baseline'):.2f}×** "
            f"({ratio_range(entry, 'ours', 'baseline')}) | {_ms(med(ours, 'p99_us'))} | "
            f"{_ms(med(base, 'p99_us'))} | {_ms(max(r['max_us'] for r in ours))} | "
            f"{_ms(max(r['max_us'] for r in base))} | "
            f"{sum(r['errors'] for r in ours)}/{sum(r['errors'] for r in base)} | "
            f"{foreign(ours + base):.0%} |"
        )
    return rows


# Creates/s before issue 9, with pwdlib's default argon2id (m=64 MiB, t=3, p=4): the figure the
# OWASP parameters are set beside.
CREATES_BEFORE = "7.5/s of a 8.2/s ceiling with pwdlib's defaults (m=64 MiB, t=3, p=4)"


def goals(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(goal, target, measured, met) for each goal of the issues; met None: a figure only."""
    out: list[tuple[str, str, str, bool | None]] = []

    def add(goal: str, target: str, compute: Callable[[], tuple[str, bool | None]]) -> None:
        try:
            measured, met = compute()
        except (KeyError, ValueError, ZeroDivisionError, statistics.StatisticsError) as exc:
            out.append((goal, target, f"not measured ({type(exc).__name__})", None))
            return
        out.append((goal, target, measured, met))

    def read_c64() -> tuple[str, bool]:
        e = results["read_mariadb_c64"]
        r = ratio(e, "ours", "baseline")
        ours, base = e["rounds"]["ours"], e["rounds"]["baseline"]
        p_ours, p_base = med(ours, "p99_us"), med(base, "p99_us")
        return (
            f"{r:.2f}× req/s (rounds {ratio_range(e, 'ours', 'baseline')}); p99 {_ms(p_ours)} "
            f"vs {_ms(p_base)} ms (rounds {spread(ours, 'p99_us')} vs {spread(base, 'p99_us')}); "
            f"other load {foreign(ours + base):.0%}",
            r >= 1.8 and p_ours <= p_base,
        )

    def fixed_rate() -> tuple[str, bool]:
        e = results["openloop_c64"]
        ours, base = e["rounds"]["ours"], e["rounds"]["baseline"]
        text = "; ".join(
            f"{label} {_ms(med(ours, field))} vs {_ms(med(base, field))} ms (rounds "
            f"{spread(ours, field)} vs {spread(base, field)})"
            for field, label in (("p99_us", "p99"), ("p999_us", "p99.9"))
        )
        failed = f"{sum(r['errors'] for r in ours)}/{sum(r['errors'] for r in base)}"
        # A timed-out request is recorded at its age then (2 s), so past the share that failed
        # a side's percentiles are lower bounds: ours must be real (at most 0.1% failed) to
        # count, the tutorial's may be bounds (ours below a bound is below the real figure).
        ours_failed = sum(r["errors"] for r in ours) / max(1, sum(r["requests"] for r in ours))
        return (
            f"at {e['rate']:,.0f} req/s: {text}; failed {failed}; other load "
            f"{foreign(ours + base):.0%}",
            ours_failed <= 0.001
            and all(med(ours, f) <= med(base, f) for f in ("p99_us", "p999_us")),
        )

    def latency_hidden() -> tuple[str, bool]:
        entry = results["read_5ms_c256"]
        with_latency, without = med(entry["rounds"]["ours"]), med(entry["rounds"]["ours_direct"])
        hidden = ratio(entry, "ours", "ours_direct")
        vs_base = ratio(entry, "ours", "baseline")
        return (
            f"{hidden:.2f} of own (rounds {ratio_range(entry, 'ours', 'ours_direct')}; "
            f"{with_latency:,.0f} vs {without:,.0f} req/s, same rounds); {vs_base:.1f}× the "
            f"baseline; other load {foreign(entry['rounds']['ours']):.0%}",
            hidden >= 0.9,
        )

    def creates() -> tuple[str, bool]:
        ceiling = results["hashing"]["ceiling_per_s"]
        entry = results["create_mariadb_c8"]
        runs = entry["rounds"]["ours"]
        rate, free = med(runs), 1 - foreign(runs)
        low, high = min(r["rps"] for r in runs), max(r["rps"] for r in runs)
        where = f"; {create_cpu_line(results['create_cpu'])}" if "create_cpu" in results else ""
        if "ceilings" not in entry:  # a run from before the ceiling was measured per round
            return (
                f"{rate:.1f}/s = {rate / ceiling:.2f} of {ceiling:.1f}/s (rounds "
                f"{low / ceiling:.2f}–{high / ceiling:.2f}; other processes took "
                f"{1 - free:.0%} of the machine: {rate / (ceiling * free):.2f} of what was "
                f"left){where}; before: {CREATES_BEFORE}",
                rate / ceiling >= 0.9,
            )
        shares, ceilings = paired_shares(entry), entry["ceilings"]
        share = statistics.median(shares)
        return (
            f"{rate:.1f}/s = {share:.2f} of the ceiling measured before each round (rounds "
            f"{min(shares):.2f}–{max(shares):.2f}; ceilings {min(ceilings):.1f}–"
            f"{max(ceilings):.1f}/s), {rate / ceiling:.2f} of {ceiling:.1f}/s measured at the "
            f"start; other processes took {1 - free:.0%} of the machine{where}; before: "
            f"{CREATES_BEFORE}",
            share >= 0.9,
        )

    def logins() -> tuple[str, None]:
        ceiling = results["hashing"]["ceiling_per_s"]
        runs = results["login_mariadb_c8"]["rounds"]["ours"]
        rate = med(runs)
        return (
            f"{rate:.1f}/s = {rate / ceiling:.2f} of the {ceiling:.1f}/s hashing ceiling; p99 "
            f"{_ms(med(runs, 'p99_us'))} ms; other load {foreign(runs):.0%}",
            None,
        )

    def burst() -> tuple[str, bool]:
        side = results["create_burst_c16"]["sides"]["ours"]
        ceiling = results["hashing"]["ceiling_per_s"]
        per_round = [
            b["p99_us"] / i["p99_us"] for b, i in zip(side["burst"], side["idle"], strict=True)
        ]
        r, share = statistics.median(per_round), med(side["creates"]) / ceiling
        return (
            f"{r:.1f}× (rounds {min(per_round):.1f}–{max(per_round):.1f}; "
            f"{_ms(med(side['burst'], 'p99_us'))} vs {_ms(med(side['idle'], 'p99_us'))} ms), "
            f"creates {med(side['creates']):.1f}/s = {share:.2f} of the ceiling; other load "
            f"{foreign(side['burst'] + side['idle']):.0%}",
            r <= 2 and share >= 0.5,
        )

    def raw() -> tuple[str, bool]:
        entry = results["raw_aiomysql_c64"]
        share = ratio(entry, "api", "raw")
        api, ceiling = med(entry["rounds"]["api"]), med(entry["rounds"]["raw"])
        return (
            f"{share:.2f} (rounds {ratio_range(entry, 'api', 'raw')}; {api:,.0f} vs "
            f"{ceiling:,.0f}/s, paired rounds); other load {foreign(entry['rounds']['api']):.0%}",
            share >= 0.3,
        )

    def migration() -> tuple[str, bool]:
        m = results["migration"]
        load = m["load"]
        return (
            f"{load['errors']} failed of {load['requests']:,}; max {_ms(load['max_us'])} ms "
            f"(same load, no migration: max {_ms(m['control']['max_us'])} ms)",
            load["errors"] == 0 and load["max_us"] < 250_000,
        )

    def backfill() -> tuple[str, bool]:
        b = results["backfill"]
        load, creates = b["load"], b["creates"]
        return (
            f"{b['upgrade_s']:.0f} s; reads {load['errors']} failed of {load['requests']:,}, "
            f"max {_ms(load['max_us'])} ms; creates {creates['errors']} failed of "
            f"{creates['requests']}, max {_ms(creates['max_us'])} ms{_backfill_control(b)}",
            # The goal is every request's: the creates' max counts as much as the reads'.
            load["errors"] == creates["errors"] == 0
            and max(load["max_us"], creates["max_us"]) < 250_000,
        )

    def sqlite() -> tuple[str, bool]:
        entries = {c: results[f"read_sqlite_c{c}"] for c in (16, 64, 256)}
        rs = {c: ratio(e, "ours", "baseline") for c, e in entries.items()}
        text = ", ".join(
            f"c={c}: {r:.2f}× ({ratio_range(entries[c], 'ours', 'baseline')})"
            for c, r in rs.items()
        )
        runs = [r for e in entries.values() for side in e["rounds"].values() for r in side]
        return f"{text}; other load {foreign(runs):.0%}", min(rs.values()) >= 1.0

    # Issue 13's goals first, in its order; then the figures and goals of earlier issues that
    # it does not supersede.
    add("GET /show/{id}, MariaDB, c=64", "≥ 1.8× req/s and p99 ≤ the tutorial's p99", read_c64)
    add("same, at a fixed offered rate (80% of the tutorial's capacity), open loop",
        "p99 and p99.9 ≤ the tutorial's", fixed_rate)  # fmt: skip
    add("read p99 during a create burst (c=16 reads, c=8 creates)",
        "≤ 2× idle read p99, with creates ≥ 0.5 of the hashing ceiling", burst)  # fmt: skip
    add("creates alone (POST /user/add, c=8)", "≥ 0.9 of the hashing ceiling", creates)
    add("SQLite GET /show/{id}, c=16, 64, 256", "≥ 1.0× the tutorial on SQLite at each", sqlite)
    add("API reads against the raw driver, c=64", "≥ 0.3 of the raw driver's rate", raw)
    add("5 ms database round trip, c=256", "≥ 0.9 of our own rate without it", latency_hidden)
    add("Logins/s (POST /auth/login, c=8)", "a figure: bounded by the same ceiling", logins)
    add("0002 up + down, 1M rows, under c=16 reads", "0 failed, max < 250 ms", migration)
    if "backfill" in results:
        add("0005 backfill, 1M rows, c=16 reads + creates", "0 failed, max < 250 ms", backfill)
    return out


SIDE_NAMES = {
    "ours": "ours",
    "baseline": "tutorial (baseline)",
    "ours_gc_off": "ours, GC tuning off (GC_FREEZE=false GC_GEN0_THRESHOLD=0)",
}


def openloop_section(results: dict[str, Any]) -> list[str]:
    """The fixed-rate table: percentiles from each request's due time, per side."""
    e = results.get("openloop_c64")
    if not e:
        return []
    everything = [r for runs in e["rounds"].values() for r in runs]
    rows = [
        "",
        f"### GET /show/{{id}} at a fixed rate (open loop): {e['rate']:,.0f} req/s, "
        f"{e.get('share', 0.8):.0%} of the tutorial's {e['capacity']:,.0f} req/s",
        "",
        f"Capacity from {e['capacity_from']}. Latency counted from when each request was due "
        "(bench/openloop.py), so a stall counts for every request that fell due during it; "
        f"median over {len(next(iter(e['rounds'].values())))} alternating rounds, with the "
        "round range in brackets. The generator used "
        f"{med(everything, 'gen_cpu'):.0%} of a core (rounds "
        f"{min(r['gen_cpu'] for r in everything):.0%}–{max(r['gen_cpu'] for r in everything):.0%})"
        f" and sent its requests at most {_ms(max(r['lag_max_us'] for r in everything))} ms late "
        f"(p99 {_ms(med(everything, 'lag_p99_us'))} ms), both counted in the figures.",
        "",
        "| side | answered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | failed | "
        "generator CPU | connections per worker, midway (by round) | other load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, runs in e["rounds"].items():
        cells = [f"{_ms(med(runs, f))} ({spread(runs, f)})"
                 for f in ("p50_us", "p90_us", "p99_us", "p999_us")]  # fmt: skip
        rows.append(
            f"| {SIDE_NAMES.get(name, name)} | {med(runs):,.0f} | {' | '.join(cells)} | "
            f"{_ms(max(r['max_us'] for r in runs))} | {sum(r['errors'] for r in runs)} | "
            f"{med(runs, 'gen_cpu'):.0%} of a core | {_spread_of_conns(runs)} | "
            f"{foreign(runs):.0%} |"
        )
    return rows


def _spread_of_conns(runs: list[dict[str, Any]]) -> str:
    """'48/16, 33/31': each round's client connections per worker, sampled halfway."""
    spreads = ["/".join(str(n) for n in r["conns_per_worker"]) for r in runs
               if r.get("conns_per_worker")]  # fmt: skip
    return ", ".join(spreads) or "-"


def gc_pauses_line(pauses: dict[str, dict[str, dict[str, float]]]) -> str:
    """'ours: gen0 12 (total 3.1 ms, longest ≤ 1 ms), ...' per side."""
    parts = []
    for side, generations in pauses.items():
        described = ", ".join(
            f"gen{gen} {g.get('count', 0):,.0f} (total {1000 * g.get('total_s', 0):,.1f} ms, "
            f"longest ≤ {1000 * g['longest_le']:g} ms)"
            for gen, g in sorted(generations.items())
            if g.get("count")
        )
        parts.append(f"{SIDE_NAMES.get(side, side)}: {described or 'none'}")
    return "garbage collections in one worker over the scenario: " + "; ".join(parts)


def memory_section(results: dict[str, Any]) -> list[str]:
    """RSS per worker under load, GC tuning on and off, with the same rounds' req/s and p99."""
    m = results.get("memory_c64")
    if not m:
        return []
    fixed = results.get("openloop_c64", {}).get("rounds", {})
    rows = [
        "",
        "### Memory per worker under load, and the garbage-collector tuning",
        "",
        "RSS of each worker (VmRSS in /proc/<pid>/status) at the end of each c=64 GET /show "
        "run, mean over the side's 2 workers, median over rounds (round range after it); the "
        "three sides ran in the same alternating rounds. 'GC tuning off' is the service with "
        "`GC_FREEZE=false GC_GEN0_THRESHOLD=0`: CPython's default thresholds (700, 10, 10), "
        "nothing frozen, as before app/gc_tuning.py.",
        "",
        "| side | RSS per worker MiB | c=64 req/s | c=64 p99 ms | fixed-rate p99 ms | "
        "fixed-rate p99.9 ms | RSS after the fixed-rate runs MiB | other load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, runs in m["rounds"].items():
        sizes = [statistics.mean(r["rss_kib"]) / 1024 for r in runs if r.get("rss_kib")]
        open_runs = fixed.get(name, [])
        rows.append(
            f"| {SIDE_NAMES.get(name, name)} | {rss_mib(runs):,.1f} ({min(sizes):,.1f}–"
            f"{max(sizes):,.1f}) | {med(runs):,.0f} | {_ms(med(runs, 'p99_us'))} | "
            + (
                f"{_ms(med(open_runs, 'p99_us'))} | {_ms(med(open_runs, 'p999_us'))} | "
                f"{rss_mib(open_runs):,.1f} | "
                if open_runs
                else "- | - | - | "
            )
            + f"{foreign(runs):.0%} |"
        )
    pauses = results.get("openloop_c64", {}).get("gc_pauses")
    if pauses:
        rows += ["", "Garbage collections (the service's `user_service_gc_pause_seconds`), "
                 + gc_pauses_line(pauses).split(": ", 1)[1].join(("", "."))]  # fmt: skip
    read = results.get("read_mariadb_c64", {}).get("rounds", {})
    if all(read.get(side) and read[side][0].get("rss_kib") for side in ("ours", "baseline")):
        rows += ["", f"In the mysql scenario's own c=64 rounds: ours {rss_mib(read['ours']):,.1f} "
                 f"MiB a worker, the tutorial's {rss_mib(read['baseline']):,.1f} MiB."]  # fmt: skip
    return rows


def galera_line(g: dict[str, Any]) -> str:
    """The `galera` scenario's row (docs/scaling.md reads it)."""
    one, three = g["reads_1_node"], g["reads_3_nodes"]
    held, mig = g["migration_held"], g["migration"]
    commit, single = g["commit_galera"], g["commit_single"]
    return (f"| Galera, 3 nodes on this machine, {g['rows']:,} rows | GET /show c=16: "
            f"{one['rps']:,.0f} req/s through 1 node, {three['rps']:,.0f} spread over 3; "
            f"0002 up {mig['upgrade_s']:.2f} s / down {mig['downgrade_s']:.2f} s under those "
            f"reads: {mig['load']['errors']} failed, max {_ms(mig['load']['max_us'])} ms, "
            f"single-row writes through each node in turn: {mig['writes']['failed']} failed, "
            f"max {mig['writes']['max_ms']:.0f} ms; with a "
            f"transaction held open on node 3: {held['load']['errors']} failed, max "
            f"{_ms(held['load']['max_us'])} ms, the transaction {held.get('held', '?')}; no "
            f"migration: max {_ms(g['control']['max_us'])} ms; a "
            f"commit p50 {commit['p50_ms']:.2f} ms (p99 {commit['p99_ms']:.2f}) vs "
            f"{single['p50_ms']:.2f} ms (p99 {single['p99_ms']:.2f}) on the single server "
            "|")  # fmt: skip


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [
        ("ours, MariaDB", "read_mariadb_c{}", "ours", (16, 64, 256), "C0", "-"),
        ("baseline, MariaDB", "read_mariadb_c{}", "baseline", (16, 64, 256), "C1", "-"),
        ("ours, SQLite", "read_sqlite_c{}", "ours", (16, 64, 256), "C0", ":"),
        ("baseline, SQLite", "read_sqlite_c{}", "baseline", (16, 64, 256), "C1", ":"),
        ("ours, MariaDB +5 ms RTT", "read_5ms_c{}", "ours", (64, 256), "C0", "--"),
        ("baseline, MariaDB +5 ms RTT", "read_5ms_c{}", "baseline", (64, 256), "C1", "--"),
    ]
    fixed = results.get("openloop_c64")
    panels = 3 if fixed else 2
    fig, axs = plt.subplots(1, panels, figsize=(6 * panels, 5.4))
    left, right = axs[0], axs[1]
    for label, pattern, side, conns, color, style in series:
        present = [c for c in conns if pattern.format(c) in results]
        if not present:
            continue
        runs = [results[pattern.format(c)]["rounds"][side] for c in present]
        left.plot(present, [med(r) for r in runs], style, color=color, marker="o", label=label)
        right.plot(present, [med(r, "p99_us") / 1000 for r in runs], style, color=color,
                   marker="o", label=label)  # fmt: skip
    axes = (
        (left, "GET /show/{id} throughput", "requests/s (median)"),
        (right, "GET /show/{id} p99 latency", "p99 ms (median, log)"),
    )
    for ax, title, unit in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks([16, 64, 256], ["16", "64", "256"])
        ax.set_xlabel("concurrent connections (wrk)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    right.set_yscale("log")
    if fixed:
        openloop_panel(axs[2], fixed)
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Async FastAPI service (uvicorn, 2 workers) vs Flask baseline (gunicorn, 2 sync)")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)


def openloop_panel(ax: Any, entry: dict[str, Any]) -> None:
    """Bars: p50, p99, p99.9 of each side at the fixed rate (median over rounds)."""
    colors = {"ours": "C0", "baseline": "C1", "ours_gc_off": "C2"}
    labels = {"ours": "ours", "baseline": "baseline", "ours_gc_off": "ours, GC tuning off"}
    points = OPEN_POINTS[:3]
    sides = list(entry["rounds"])
    width = 0.8 / len(sides)
    for i, side in enumerate(sides):
        runs = entry["rounds"][side]
        values = [med(runs, field) / 1000 for field, _ in points]
        xs = [x + (i - (len(sides) - 1) / 2) * width for x in range(len(points))]
        ax.bar(xs, values, width, color=colors.get(side, f"C{i + 3}"),
               label=labels.get(side, side))  # fmt: skip
        for x, v in zip(xs, values, strict=True):
            ax.annotate(f"{v:.1f}", (x, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(points)), [label for _, label in points])
    ax.set_yscale("log")
    lowest = min(med(runs, "p50_us") for runs in entry["rounds"].values()) / 1000
    ax.set_ylim(bottom=max(lowest / 3, 0.1))
    ax.set_ylabel("ms from each request's due time (median, log)")
    ax.set_title(f"Fixed rate {entry['rate']:,.0f} req/s (open loop), MariaDB")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def overall_foreign(results: dict[str, Any]) -> tuple[float, float]:
    """Lowest and highest median 'other load' over the scenarios."""
    shares = [
        foreign([r for side in entry["rounds"].values() for r in side])
        for entry in results.values()
        if isinstance(entry, dict) and isinstance(entry.get("rounds"), dict)
    ]
    return (min(shares), max(shares)) if shares else (0.0, 0.0)


def write(results: dict[str, Any]) -> None:
    from bench import notes

    plot(results)
    cfg, mach = results["config"], results["machine"]
    md: list[str] = [
        "# Benchmarks: the async service against the tutorial's Flask app",
        "",
        "Generated by `make bench` (bench/run.py); every figure below comes from that one run. "
        "Do not edit by hand: change bench/ and rerun.",
        "",
        "## Machine and method",
        "",
        f"- CPU: {mach['cpu']}; memory {mach['memory']}; {mach['os']}; Python {mach['python']}; "
        f"MariaDB {mach['mariadb']}; {mach['wrk']}.",
        f"- Packages: {mach['packages']}.",
        "- The load generators (wrk, 2 threads; bench/openloop.py for the fixed-rate rows), "
        "MariaDB, both servers and the delay proxy share the same 2 cores, which other "
        "engineers' test runs also use: expect noise.",
        "- Ours: `uvicorn app.main:app --workers 2 --loop uvloop --http httptools "
        "--no-access-log` with `DB_POOL_SIZE=20 DB_MAX_OVERFLOW=0` (see below), other settings "
        "at their defaults. Baseline "
        "(`bench/baseline/app.py`, Flask + Flask-SQLAlchemy + PyMySQL, the tutorial's app): "
        "`gunicorn --workers 2 --worker-class sync`.",
        f"- Fresh databases filled the same way: {cfg['rows']:,} users `u1..uN` with emails "
        "(ours stores an argon2id hash, the baseline the tutorial's plaintext password). "
        "GETs pick ids uniformly at random.",
        f"- {cfg['rounds']} alternating rounds of {cfg['seconds']} s per figure (creates, "
        f"the mix and the fixed-rate runs: {2 * cfg['seconds']} s; the create burst: 3 rounds; "
        "ours first in "
        "even rounds, the baseline first in odd ones); each figure is the median over rounds, "
        "each ratio the median of the per-round ratios. wrk's request timeout is 2 s; "
        "'failed' counts non-2xx answers, socket errors and timeouts.",
        "- wrk is closed-loop (a connection waits for each answer before sending again), so "
        "its latencies leave out the requests a stalled server was never sent. The fixed-rate "
        "rows come from bench/openloop.py instead: requests due at a constant rate, each "
        "latency counted from its due time (see *What limits each figure*).",
        "- RSS per worker is VmRSS from /proc/<pid>/status at the end of each run.",
        "- 'Other load' is the share of the machine's 2 cores that processes outside the "
        "benchmark (not its servers, wrk, the proxy or MariaDB) used during those wrk runs, "
        "from /proc: other engineers' test runs share this machine. In this run it ranged "
        f"from {overall_foreign(results)[0]:.0%} to {overall_foreign(results)[1]:.0%} by "
        "scenario (each table says); where it is high the absolute figures are low and single "
        "rounds swing, and the ratios, from back-to-back pairs, are the figures to read.",
        f"- Command: `make bench` (BENCH_ROUNDS, BENCH_SECONDS, BENCH_ROWS to change). "
        f"This run took {cfg.get('elapsed_s', 0) / 60:.1f} min.",
        *(
            [
                "- The adoption row is the exception: a full run leaves the `adopt` scenario out "
                "(it hashes for over 20 minutes), so it comes from its own `BENCH_ONLY=adopt "
                "make bench`, merged into bench/out/results.json before the report was written."
            ]
            if "adopt" in results
            else []
        ),
        *(f"- {line}" for line in results.get("merged_runs", [])),
        "",
        "## Goals",
        "",
        "| goal | target | measured | status |",
        "|---|---|---|---|",
    ]
    for goal, target, measured, met in goals(results):
        status = {True: "**met**", False: "**missed**", None: "figure"}[met]
        if measured.startswith("not measured"):
            status = "not measured"
        md.append(f"| {goal} | {target} | {measured} | {status} |")
    md += ["", notes.goal_notes(results), "", "## Throughput and latency", ""]
    md.append(f"![throughput and p99 against concurrency]({PLOT.name})")
    md += ["", "Lines from different scenarios ran at different times: compare each pair of "
           "lines (ours, baseline) with each other, and read absolute levels against each "
           "table's 'other load' column."]  # fmt: skip
    md += ["", "### MariaDB", ""]
    md += comparison_table(results, [
        ("read_mariadb_c16", "GET /show/{id}"), ("read_mariadb_c64", "GET /show/{id}"),
        ("read_mariadb_c256", "GET /show/{id}"),
        ("create_mariadb_c8", "POST /user/add (ours hashes argon2id, baseline stores plaintext)"),
        ("mix_mariadb_c64", "90% GET /show, 10% POST /user/add"),
    ])  # fmt: skip
    md += openloop_section(results)
    md += memory_section(results)
    md += ["", f"### MariaDB behind a {results.get('rtt_ms', 5):g} ms round-trip delay proxy", ""]
    md += comparison_table(results, [
        ("read_5ms_c64", "GET /show/{id}"), ("read_5ms_c256", "GET /show/{id}"),
    ])  # fmt: skip
    for conns in (64, 256):
        entry = results.get(f"read_5ms_c{conns}")
        if entry and "ours_direct" in entry["rounds"]:
            direct = entry["rounds"]["ours_direct"]
            md += ["", f"Ours without the proxy in the same rounds, c={conns}: "
                   f"{med(direct):,.0f} req/s, p99 {_ms(med(direct, 'p99_us'))} ms; with it "
                   f"{ratio(entry, 'ours', 'ours_direct'):.2f} of that."]  # fmt: skip
    if "round_trips" in results:
        rt = results["round_trips"]
        md += ["", f"Database round trips per GET (counted by the proxy): ours {rt['ours']:.1f}, "
               f"baseline {rt['baseline']:.1f}. The proxy itself used "
               f"{results.get('proxy_cpu_share', 0):.0%} of a core during these runs."]  # fmt: skip
    md += ["", "### SQLite", ""]
    md += comparison_table(results, [
        ("read_sqlite_c16", "GET /show/{id}"), ("read_sqlite_c64", "GET /show/{id}"),
        ("read_sqlite_c256", "GET /show/{id}"),
    ])  # fmt: skip
    md += ["", "### Ceilings and other figures", ""]
    md += ["| figure | value |", "|---|--:|"]
    if "raw_aiomysql_c64" in results:
        raw = results["raw_aiomysql_c64"]["rounds"]["raw"]
        api = results["raw_aiomysql_c64"]["rounds"].get("api")
        if api:
            md.append(f"| GET /show/{{id}} c=64, in the same rounds as the raw driver | "
                      f"{med(api):,.0f} req/s (p99 {_ms(med(api, 'p99_us'))} ms) |")  # fmt: skip
        md.append(f"| raw aiomysql PK SELECT, c=64, 2 processes, no HTTP | {med(raw):,.0f} "
                  f"queries/s (p99 {_ms(med(raw, 'p99_us'))} ms) |")  # fmt: skip
    if "hashing" in results:
        h = results["hashing"]
        md.append(
            f"| argon2id hash ({h.get('parameters', 'pwdlib defaults: m=64 MiB, t=3, p=4')}) | "
            f"{h['wall_s'] * 1000:.1f} ms wall, {h['cpu_s'] * 1000:.1f} ms CPU |"
        )
        if "verify_cpu_s" in h:
            md.append(f"| argon2id verification (a login) | {h['verify_wall_s'] * 1000:.1f} ms "
                      f"wall, {h['verify_cpu_s'] * 1000:.1f} ms CPU |")  # fmt: skip
        if "shared_cpu_s" in h:
            md.append(f"| argon2id hash with {h['cores']} cores hashing at once | "
                      f"{h['shared_cpu_s'] * 1000:.1f} ms CPU |")  # fmt: skip
        md.append(f"| hashing ceiling = {h['cores']} cores ÷ CPU time per hash (all cores "
                  f"hashing) | {h['ceiling_per_s']:.1f} hashes/s |")  # fmt: skip
    login = results.get("login_mariadb_c8")
    if login:
        runs = login["rounds"]["ours"]
        md.append(f"| POST /auth/login, c={login['conns']}, MariaDB (ours only: the baseline has "
                  f"no login) | {med(runs):,.1f} logins/s (p99 {_ms(med(runs, 'p99_us'))} ms, "
                  f"failed {sum(r['errors'] for r in runs)}) |")  # fmt: skip
    burst = results.get("create_burst_c16", {}).get("sides", {})
    for side, data in burst.items():
        side = side.replace(
            "ours_hash_threads_per_cpu",
            "the service with one hashing thread per CPU in each worker (HASH_THREADS=2, "
            "the old default)",
        )
        md.append(f"| {side}: read p99 idle → during a c=8 create burst (c=16 reads) | "
                  f"{_ms(med(data['idle'], 'p99_us'))} → {_ms(med(data['burst'], 'p99_us'))} "
                  f"ms; {med(data['creates']):.1f} creates/s |")  # fmt: skip
    drv = results.get("driver_c64")
    if drv and "rounds" in drv:
        drv_ratio = ratio(drv, "asyncmy", "aiomysql")
        md.append(f"| asyncmy / aiomysql, GET /show c=64 (median of paired rounds) | "
                  f"{drv_ratio:.2f}× "
                  f"({med(drv['rounds']['asyncmy']):,.0f} vs "
                  f"{med(drv['rounds']['aiomysql']):,.0f} req/s) |")  # fmt: skip
    obs = results.get("observability_c64")
    if obs and "rounds" in obs:
        for side, label in (("ours_observed", "JSON access log + metrics on"),
                            ("ours_production", "as `python -m app.serve` runs it")):  # fmt: skip
            md.append(f"| GET /show c=64, {label} / both off (median of paired rounds) | "
                      f"{ratio(obs, side, 'ours'):.2f}× ({med(obs['rounds'][side]):,.0f} vs "
                      f"{med(obs['rounds']['ours']):,.0f} req/s; p99 "
                      f"{_ms(med(obs['rounds'][side], 'p99_us'))} vs "
                      f"{_ms(med(obs['rounds']['ours'], 'p99_us'))} ms) |")  # fmt: skip
    if "migration" in results:
        m = results["migration"]
        load = m["load"]
        md.append(f"| 0001→0002→0001 on {m['rows']:,} rows under c=16 reads | up "
                  f"{m['upgrade_s']:.2f} s, down {m['downgrade_s']:.2f} s (alembic CLI wall "
                  f"time); {load['requests']:,} requests, {load['errors']} failed, p99 "
                  f"{_ms(load['p99_us'])} ms, max {_ms(load['max_us'])} ms; same load without "
                  f"a migration: p99 {_ms(m['control']['p99_us'])} ms, max "
                  f"{_ms(m['control']['max_us'])} ms |")  # fmt: skip
    if "backfill" in results:
        b = results["backfill"]
        load, creates = b["load"], b["creates"]
        md.append(f"| 0002→0005 (username keys) on {b['rows']:,} rows under c=16 reads and 2 "
                  f"creates/s by the previous release | {b['upgrade_s']:.1f} s (alembic CLI wall "
                  f"time: column, backfill, online index (the look-alike check), catch-up); reads "
                  f"{load['requests']:,}, {load['errors']} failed, max {_ms(load['max_us'])} ms; "
                  f"creates {creates['requests']}, {creates['errors']} failed, max "
                  f"{_ms(creates['max_us'])} ms{_backfill_control(b)} |")  # fmt: skip
    if "galera" in results:
        md.append(galera_line(results["galera"]))
    if "adopt" in results:  # only when BENCH_ONLY named it (bench/run.py)
        a = results["adopt"]
        md.append(f"| `python -m app.migrate adopt`: a tutorial database of {a['rows']:,} users "
                  f"taken over | {a['command_s']:.1f} s, {a['rows_per_s']:,.0f} users/s; "
                  f"argon2id hashing {a['hashing_s']:.1f} s ({100 * a['hashing_share']:.0f}% "
                  f"of it) on {a['cpus']} CPUs |")  # fmt: skip
    md += ["", notes.profile_section(results), "", notes.changes_section(), ""]
    DOC.write_text("\n".join(md))


if __name__ == "__main__":
    write(json.loads((ROOT / "bench" / "out" / "results.json").read_text()))
