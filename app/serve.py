"""`python -m app.serve`: uvicorn with the production bounds this service relies on, from the
settings (`make run` uses it; README, "Running it in production").

What plain `uvicorn app.main:app` would not do by itself:
- JSON log lines from the first one (uvicorn's own start-up lines included);
- one metrics directory for all workers (PROMETHEUS_MULTIPROC_DIR), emptied before they start;
- header size and header time bounds (app/http_protocol.py), no `server` header;
- X-Forwarded-For believed only from FORWARDED_ALLOW_IPS (uvicorn's default trusts 127.0.0.1,
  so any local client could pick its own address);
- settings checked before anything starts: a bad one is one clear line and exit status 2.

Deliberately no import of app.main or app.metrics here: prometheus-client reads
PROMETHEUS_MULTIPROC_DIR when it is first imported, so this process sets it first.
"""

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from app.config import Settings, get_settings
from app.logging_setup import uvicorn_log_config

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PROTOCOL = "app.http_protocol:HttpToolsProtocol"


def prepare_metrics_dir() -> Path | None:
    """Empty the configured metrics directory, or make a temporary one; returns the latter.

    Files left by a previous run would add its counters to this one's, and its live gauges
    (of processes long gone) to this run's sums.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    made = Path(tempfile.mkdtemp(prefix="user-service-metrics-"))
    os.environ[MULTIPROC_ENV] = str(made)
    return made


def uvicorn_options(settings: Settings) -> dict[str, object]:
    """Everything `uvicorn.run` is given besides the app, host, port and workers."""
    trusted = ",".join(settings.forwarded_allow_ips)
    return {
        "http": PROTOCOL,
        "server_header": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "log_config": uvicorn_log_config(settings),
        "log_level": settings.log_level.lower(),
        "access_log": False,  # the app writes its own access line, with route and request id
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        # In-flight requests end within their deadline; shutdown waits that long, no longer.
        "timeout_graceful_shutdown": math.ceil(settings.request_timeout_s) + 1,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app.serve", description="Serve the app with its production settings."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: the WEB_CONCURRENCY setting, else 1)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"invalid settings, not starting:\n{exc}", file=sys.stderr)
        return 2
    workers = settings.web_concurrency if args.workers is None else args.workers
    if workers < 1:
        print(f"--workers must be at least 1, not {workers}", file=sys.stderr)
        return 2
    made = prepare_metrics_dir() if settings.metrics_enabled else None
    try:
        uvicorn.run(
            "app.main:app",
            host=args.host,
            port=args.port,
            workers=workers,
            **uvicorn_options(settings),  # type: ignore[arg-type]
        )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
