"""Logs on both backends: one JSON object per line, each line of a request carrying its id, an
access line per request, and a 503's database error tied to it by that id."""

import json
import logging
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.config import Settings
from app.db import create_engine
from app.logging_setup import configure_logging

UNREACHABLE = "mysql+aiomysql://nobody@127.0.0.1:9/none"


def json_lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The stderr lines since the last read, each parsed (a line that is not JSON fails)."""
    err = capfd.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def access_line(lines: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    (line,) = [r for r in lines if r["logger"] == "app.access" and r["request_id"] == request_id]
    return line


async def test_a_valid_request_id_is_kept_answered_and_on_the_access_line(
    client: AsyncClient, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    response = await client.get("/show/99", headers={"X-Request-ID": "req-7.abc_Z"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "req-7.abc_Z"
    line = access_line(json_lines(capfd), "req-7.abc_Z")
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/show/{user_id}"  # the template, not /show/99
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["time"].endswith("+00:00")


@pytest.mark.parametrize("sent", ["has space", "x" * 65, "semi;colon", "ünïcode"])
async def test_a_malformed_request_id_is_replaced_by_a_generated_one(
    client: AsyncClient, capfd: pytest.CaptureFixture[str], sent: str
) -> None:
    capfd.readouterr()
    response = await client.get("/livez", headers=[(b"X-Request-ID", sent.encode())])
    answered = response.headers["x-request-id"]
    assert answered != sent
    assert len(answered) == 32 and int(answered, 16) >= 0
    assert access_line(json_lines(capfd), answered)["status"] == 200


async def test_each_request_gets_its_own_generated_id(client: AsyncClient) -> None:
    ids = {(await client.get("/livez")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_a_503_and_the_database_error_behind_it_share_a_request_id(
    app: FastAPI, client: AsyncClient, capfd: pytest.CaptureFixture[str]
) -> None:
    state = app.state.runtime
    await state.engine.dispose()
    state.engine = create_engine(Settings(database_url=UNREACHABLE))
    state.sessionmaker.configure(bind=state.engine)
    capfd.readouterr()
    try:
        response = await client.get("/users", headers={"X-Request-ID": "outage-1"})
    finally:
        await state.engine.dispose()
    assert response.status_code == 503
    lines = [r for r in json_lines(capfd) if r["request_id"] == "outage-1"]
    # The error class and the driver's number (2003: cannot connect), never the message.
    assert [r["message"] for r in lines if r["level"] == "WARNING"] == [
        "database unavailable: OperationalError 2003"
    ]
    assert access_line(lines, "outage-1")["status"] == 503


def test_text_format_for_a_terminal_still_carries_the_request_id(
    capfd: pytest.CaptureFixture[str],
) -> None:
    try:
        configure_logging(Settings(log_format="text"))
        capfd.readouterr()
        logging.getLogger("app.test").warning("plain words")
        err = capfd.readouterr().err
    finally:
        configure_logging(Settings())
    assert "WARNING app.test [None] plain words" in err
