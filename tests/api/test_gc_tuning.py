"""The collector is tuned once the app has started: start-up objects frozen, fewer young scans."""

import gc
from collections.abc import Iterator

import pytest

from app.config import Settings
from app.main import create_app


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """The test process's collector settings, put back after the test changed them."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
async def test_the_lifespan_freezes_start_up_objects_and_sets_the_young_threshold(
    settings: Settings,
) -> None:
    gc.unfreeze()
    tuned = settings.model_copy(update={"gc_freeze": True, "gc_gen0_threshold": 12_345})
    app = create_app(tuned)
    async with app.router.lifespan_context(app):
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("collector_restored")
async def test_a_zero_threshold_and_no_freeze_leave_the_collector_as_it_was(
    settings: Settings,
) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    untouched = settings.model_copy(update={"gc_freeze": False, "gc_gen0_threshold": 0})
    app = create_app(untouched)
    async with app.router.lifespan_context(app):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


def test_the_defaults_are_the_measured_ones() -> None:
    defaults = Settings.model_fields
    assert defaults["gc_freeze"].default is True
    assert defaults["gc_gen0_threshold"].default == 50_000
