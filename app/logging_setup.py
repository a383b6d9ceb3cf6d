"""Log lines as one JSON object each on stderr: time, level, logger, message and request id.

`configure_logging` runs in the lifespan, so the app's own lines are JSON however uvicorn was
started; `uvicorn_log_config` hands the same setup to uvicorn (`python -m app.serve`), so that
uvicorn's start-up lines, logged before the app is loaded, are JSON too.
"""

import logging
import sys
from typing import Any, TextIO

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter

from app.config import Settings

# The record attributes every line carries, renamed to what log pipelines expect.
JSON_FIELDS = ("levelname", "name", "message", "correlation_id", "process")
RENAMED = {
    "levelname": "level",
    "name": "logger",
    "correlation_id": "request_id",
    "process": "pid",
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"


class StderrHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes to whatever `sys.stderr` is when a line is logged.

    As logging's own last-resort handler does: a handler that kept the stream it was made with
    would write to a closed file once a test runner swaps stderr for the next test.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # always sys.stderr


def build_formatter(log_format: str = "json") -> logging.Formatter:
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    return JsonFormatter(list(JSON_FIELDS), rename_fields=RENAMED, timestamp="time")


def build_handler(log_format: str) -> StderrHandler:
    handler = StderrHandler()
    handler.addFilter(CorrelationIdFilter())
    handler.setFormatter(build_formatter(log_format))
    return handler


def _route_uvicorn_to_root() -> None:
    # uvicorn's loggers keep handlers of their own (plain text) and do not propagate: send them
    # through ours instead. Its access log goes: the app writes a richer access line itself.
    server = logging.getLogger("uvicorn")
    server.handlers.clear()
    server.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


def configure_logging(settings: Settings) -> None:
    """Install the service's handler on the root logger, once per process (idempotent)."""
    root = logging.getLogger()
    mine = [h for h in root.handlers if isinstance(h, StderrHandler)]
    if not mine:
        root.addHandler(build_handler(settings.log_format))
    else:
        for handler in mine:
            handler.setFormatter(build_formatter(settings.log_format))
    root.setLevel(settings.log_level)
    _route_uvicorn_to_root()


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """The same setup as a `logging.config.dictConfig` dict, for `uvicorn.run(log_config=...)`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "asgi_correlation_id.CorrelationIdFilter"}},
        "formatters": {
            "service": {
                "()": "app.logging_setup.build_formatter",
                "log_format": settings.log_format,
            }
        },
        "handlers": {
            "stderr": {
                "()": "app.logging_setup.StderrHandler",
                "filters": ["request_id"],
                "formatter": "service",
            }
        },
        "root": {"handlers": ["stderr"], "level": settings.log_level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # Alembic announces each plugin it loads at INFO when the schema gate first reads
            # the revisions: start-up noise in a service that runs no migration itself.
            "alembic": {"level": "WARNING"},
        },
    }
