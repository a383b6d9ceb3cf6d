"""Request ids: taken from a well-formed incoming `X-Request-ID`, generated otherwise.

asgi-correlation-id's middleware does the work (the response header, the context variable the
log filter reads); this module only says which incoming ids are kept. Its default accepts
UUIDs alone, which would replace the ids most proxies and tracers send (nginx's 32 hex digits
pass, a load balancer's `Root=1-...` does not); anything of up to 64 letters, digits, `-`, `_`
and `.` is kept, so no id can break a log line or smuggle a header.
"""

import re

from asgi_correlation_id import CorrelationIdMiddleware

__all__ = ["HEADER", "CorrelationIdMiddleware", "is_valid_request_id"]

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_valid_request_id(value: str) -> bool:
    return _VALID.fullmatch(value) is not None
