"""Request ids: taken from a well-formed incoming `X-Request-ID`, generated otherwise.

asgi-correlation-id's context variable carries the id to every log line (its log filter reads
it, app/logging_setup.py); the edge (app/edge.py) sets it and answers with the header. Its
middleware did that as a layer of its own, one more per request; this is the same logic, with
this service's rule for incoming ids. Its default accepts UUIDs alone, which would replace the
ids most proxies and tracers send (nginx's 32 hex digits pass, a load balancer's `Root=1-...`
does not); anything of up to 64 letters, digits, `-`, `_` and `.` is kept, so no id can break a
log line or smuggle a header.
"""

import logging
import re
from uuid import uuid4

from asgi_correlation_id.context import correlation_id

HEADER = "X-Request-ID"
HEADER_KEY = HEADER.lower().encode("latin-1")
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")

logger = logging.getLogger(__name__)


def is_valid_request_id(value: str) -> bool:
    return _VALID.fullmatch(value) is not None


def take_request_id(incoming: bytes | None) -> str:
    """The request's id (the client's, if well formed), now the current one for logging."""
    request_id = incoming.decode("latin-1") if incoming else ""
    if not is_valid_request_id(request_id):
        generated = uuid4().hex
        if request_id:
            logger.warning("request id replaced by %s: the header's was not well formed", generated)
        request_id = generated
    correlation_id.set(request_id)
    return request_id
