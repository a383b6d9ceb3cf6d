"""The prose of docs/benchmarks.md that explains the figures: limits, profile, what changed."""

from typing import Any


def goal_notes(results: dict[str, Any]) -> str:
    return ""


def profile_section(results: dict[str, Any]) -> str:
    prof = results.get("profile_read")
    if not prof:
        return ""
    lines = [
        "## Profile: where a GET /show/{id} worker spends its time (c=64, MariaDB)",
        "",
        f"py-spy, {prof['samples']:,} samples of one uvicorn worker, self time by layer "
        "(the innermost frame that belongs to a known package):",
        "",
        "| layer | share of samples |",
        "|---|--:|",
    ]
    lines += [f"| {name} | {pct:.0f}% |" for name, pct in prof["layers"]]
    lines += ["", "Hottest frames (self time):", ""]
    lines += [f"- `{frame}` {pct:.1f}%" for frame, pct in prof["top_frames"]]
    return "\n".join(lines)


def changes_section() -> str:
    return ""
