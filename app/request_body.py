"""A request's body, read up front: capped in size, and refused if a JSON object repeats a key.

Small by definition (MAX_BODY_BYTES), so it is buffered whole and replayed to the app; a body
over the cap is answered 413 as soon as it passes it, in the service's JSON shape (Starlette's
own limit answers a too-large `Content-Length` in plain text).
"""

import json
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope

from app.metrics import count_refusal

# Methods whose requests carry no body unless they say so (Content-Length, Transfer-Encoding).
BODILESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
JSON_METHODS = frozenset({"POST", "PUT", "PATCH"})


def may_have_body(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    return (
        scope["method"] not in BODILESS_METHODS
        or b"content-length" in headers
        or b"transfer-encoding" in headers
    )


def too_large(max_bytes: int) -> Response:
    count_refusal(413, "body_too_large")
    return JSONResponse({"detail": f"request body larger than {max_bytes} bytes"}, status_code=413)


async def read_capped(
    receive: Receive, headers: dict[bytes, bytes], max_bytes: int
) -> bytes | Response | None:
    """The whole body; a 413 answer past `max_bytes`; None if the client went away."""
    declared = headers.get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        return too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return too_large(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the buffered body first, then whatever the client sends next
    (a disconnect)."""
    pending: Message | None = {"type": "http.request", "body": body, "more_body": False}

    async def replay() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replay


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )


def duplicate_key_refusal(body: bytes) -> Response | None:
    """A 422, in FastAPI's validation shape, for a JSON body that gives a key twice.

    Python's json (and so FastAPI) keeps the last value and says nothing: `{"email": "a@ex.io",
    "email": null}` would mean whatever the parser in front of us did not. The body is parsed
    once more with a hook that refuses repeats; a body that is not valid JSON at all is left
    for FastAPI to answer.
    """
    try:
        json.loads(body, object_pairs_hook=_refuse_duplicates)
    except DuplicateKey as exc:
        error = {
            "type": "json_invalid",
            "loc": ["body"],
            "msg": f"duplicate key {exc.key[:64]!r} in a JSON object",
        }
        return JSONResponse({"detail": [error]}, status_code=422)
    except (ValueError, RecursionError):
        pass  # not JSON, or too deep: FastAPI gives its own answer
    return None
