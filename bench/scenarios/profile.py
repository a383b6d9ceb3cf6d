"""py-spy on one of our workers during a read run, summarised as self time by layer."""
# ruff: noqa: S603  (a harness runs local processes)

import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import harness
from bench.common import ROWS, SECONDS, Results
from bench.harness import ROOT, Server, log, wrk

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
