"""The edge as a client meets it over TCP, against `python -m app.serve`: header size and header
time bounds, no `server` header, JSON on every log line. Raw sockets, because an HTTP client
would not send what an attacker sends.

These bounds live in the HTTP protocol, before any database work, so one SQLite server serves
the module (the routes' behaviour on both backends is tested in-process elsewhere).
"""

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import alembic
from tests.support.server import Served, serving

CAP = 16_384  # the default MAX_HEADER_BYTES
HEADER_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('edge') / 'edge.db'}"
    asyncio.run(alembic.upgrade(url))
    with serving(url, env={"HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}) as served:
        yield served


def connect(server: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def request_head(extra_headers: bytes = b"", path: str = "/livez") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path.encode(), extra_headers)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names), body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full answer: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body[:length]


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_headers_just_under_the_cap_are_served(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(request_head(b"X-Pad: " + b"a" * (CAP - 200) + b"\r\n"))
        status, _, _ = read_answer(sock)
    assert status == 200


def test_headers_over_the_cap_get_431_in_json_and_the_connection_closes(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(request_head(b"X-Pad: " + b"a" * (CAP + 1) + b"\r\n"))
        status, headers, body = read_answer(sock)
        assert status == 431
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        assert json.loads(body) == {"detail": f"request headers over {CAP} bytes"}
        assert closed_by_server(sock, within_s=5)


def test_many_small_headers_over_the_cap_get_431(server: Served) -> None:
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(200))  # ~20 KiB
    with connect(server) as sock:
        sock.sendall(request_head(many))
        status, _, _ = read_answer(sock)
    assert status == 431


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_32_mib_header_block_is_refused_without_buffering_it(server: Served) -> None:
    # On plain uvicorn (httptools) this was a 200 and 32 MiB more resident memory.
    pid = server.process.pid  # one worker: uvicorn serves in the launcher's own process
    before = rss_kib(pid)
    status: int | None = None
    with connect(server) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        try:
            while sent < 32 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
            status = read_answer(sock)[0]
        except (BrokenPipeError, ConnectionResetError):
            # Closed while bytes were still coming: the 431 may be lost to the reset.
            pass
    assert status in (431, None)
    assert sent < 32 * 1024 * 1024, "the server read the whole 32 MiB"
    assert rss_kib(pid) - before < 8 * 1024


def test_a_client_sending_headers_too_slowly_gets_408_and_is_cut_off(server: Served) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        status = None
        for i in range(40):  # one header line every 0.25 s: 10 s, were it never cut off
            try:
                sock.sendall(b"X-Slow-%d: y\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.25)
            sock.settimeout(0.01)
            try:
                peek = sock.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                continue
            if peek:
                sock.settimeout(5)
                status, _, body = read_answer(sock)
                break
        elapsed = time.monotonic() - started
    assert status == 408
    assert json.loads(body)["detail"].startswith("request headers not complete within")
    assert elapsed < HEADER_TIMEOUT_S + 1.5


def test_a_connection_that_sends_nothing_is_closed(server: Served) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        assert closed_by_server(sock, within_s=HEADER_TIMEOUT_S + 3)
    assert time.monotonic() - started >= HEADER_TIMEOUT_S - 0.2


def test_keep_alive_idle_between_requests_is_not_cut_by_the_header_timeout(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(request_head())
        assert read_answer(sock)[0] == 200
        time.sleep(HEADER_TIMEOUT_S + 0.5)  # idle, under the 5 s keep-alive timeout
        sock.sendall(request_head())
        assert read_answer(sock)[0] == 200


def test_no_server_header_and_the_api_headers(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(request_head(path="/show/1"))
        status, headers, _ = read_answer(sock)
    assert status == 404
    assert "server" not in headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"]


def test_every_log_line_is_json_with_the_fields_a_pipeline_needs(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(request_head(b"X-Request-ID: edge-test-42\r\n", path="/show/7"))
        assert read_answer(sock)[0] == 404
    deadline = time.monotonic() + 5
    while not any(r.get("request_id") == "edge-test-42" for r in server.access_lines()):
        assert time.monotonic() < deadline, "no access line for the request"
        time.sleep(0.05)
    records = server.records()  # json.loads of every line: a plain-text line fails here
    assert any(r["message"].startswith("Started server process") for r in records)
    for record in records:
        assert {"time", "level", "logger", "message", "request_id", "pid"} <= set(record)
    (access,) = [r for r in server.access_lines() if r["request_id"] == "edge-test-42"]
    assert access["method"] == "GET"
    assert access["route"] == "/show/{user_id}"
    assert access["status"] == 404
    assert access["duration_ms"] >= 0
