"""`python -m app.serve`'s worker count: WEB_CONCURRENCY (environment or .env) or --workers."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import ValidationError

from app import serve
from app.config import Settings, get_settings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What `serve.main` would hand uvicorn (nothing is started)."""
    seen: dict[str, Any] = {}
    monkeypatch.setenv("METRICS_ENABLED", "false")
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **kw: seen.update(kw))
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


def test_web_concurrency_sets_the_workers_and_the_flag_wins(
    started: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert serve.main([]) == 0
    assert started["workers"] == 3
    get_settings.cache_clear()
    assert serve.main(["--workers", "2"]) == 0
    assert started["workers"] == 2


def test_a_worker_count_below_one_is_refused_before_anything_starts(
    started: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert serve.main(["--workers", "0"]) == 2
    monkeypatch.setenv("WEB_CONCURRENCY", "0")
    get_settings.cache_clear()
    assert serve.main([]) == 2
    assert started == {}
    with pytest.raises(ValidationError, match="web_concurrency"):
        Settings(_env_file=None, web_concurrency=0)


def test_web_concurrency_in_a_dotenv_file_is_a_known_setting(tmp_path: Path) -> None:
    """It stopped sizing the hashing pools (the CPU slots did): an .env naming it still loads."""
    env_file = tmp_path / ".env"
    env_file.write_text("WEB_CONCURRENCY=4\n")
    assert Settings(_env_file=env_file).web_concurrency == 4
