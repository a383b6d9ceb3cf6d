"""The README's promise: `make run` serves, and its curl examples answer exactly as written."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.migrate.config import PROJECT_ROOT
from tests.support.net import free_port

README = PROJECT_ROOT / "README.md"


def readme_examples() -> list[tuple[str, str]]:
    """(command, expected output) pairs: each `curl` line of the API section and its `# =>` line."""
    api = README.read_text().split("## API", 1)[1].split("\n## ", 1)[0]
    lines = api.splitlines()
    pairs = []
    for index, line in enumerate(lines):
        if line.startswith("curl "):
            expected = lines[index + 1]
            assert expected.startswith("# => "), f"no expected answer after: {line}"
            pairs.append((line, expected.removeprefix("# => ")))
    return pairs


def test_readme_has_curl_examples_for_every_route() -> None:
    commands = " ".join(command for command, _ in readme_examples())
    for route in ("/user/add", "/show/", "/users", "-X PATCH", "-X DELETE", "/health"):
        assert route in commands
    for route in ("/auth/login", "/auth/logout", "/users/me", "Bearer $TOKEN"):
        assert route in commands


# Where an answer shows $TOKEN, any token matches, and the commands after it get it as $TOKEN.
TOKEN = "$TOKEN"
TOKEN_PATTERN = r"(?P<token>[A-Za-z0-9_-]{43,})"


def matches(output: str, expected: str) -> tuple[bool, str | None]:
    """Does `output` answer `expected`? And the token it carries where `expected` has $TOKEN."""
    if TOKEN not in expected:
        return output == expected, None
    pattern = re.escape(expected).replace(re.escape(TOKEN), TOKEN_PATTERN)
    found = re.fullmatch(pattern, output)
    return found is not None, found["token"] if found else None


@pytest.fixture
def served(tmp_path: Path) -> object:
    """`make run` on a fresh SQLite file, on a free port; yields the base URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/readme.db"}
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so the whole group (make, uvicorn) can be stopped
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"make run exited {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("make run did not serve within 120 s")
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_readme_curl_examples_work_verbatim(served: int) -> None:
    env = dict(os.environ)
    tokens: list[str] = []
    for command, expected in readme_examples():
        # The README says 127.0.0.1:8000; the test serves on a free port instead.
        runnable = re.sub(r"127\.0\.0\.1:8000", f"127.0.0.1:{served}", command)
        result = subprocess.run(
            ["bash", "-c", runnable],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        ok, token = matches(result.stdout.strip(), expected)
        assert ok, f"{command}\n{result.stdout}"
        if token is not None:
            env["TOKEN"] = token
            tokens.append(token)
    assert len(tokens) == len(set(tokens)) >= 2, "each login answers a new token"


def test_token_placeholder_matches_a_token_only_where_it_stands() -> None:
    expected = '{"access_token":"$TOKEN","token_type":"bearer"}'
    token = "A" * 43
    assert matches(f'{{"access_token":"{token}","token_type":"bearer"}}', expected) == (True, token)
    assert matches('{"access_token":"short","token_type":"bearer"}', expected)[0] is False
    assert matches(f'{{"access_token":"{token}","token_type":"jwt"}}', expected)[0] is False
