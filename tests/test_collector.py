"""service.collector: the heap frozen each time the kept rows grow by a step, and only then."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service import collector
from service.collector import FreezeOnGrowth


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Leave the collector as the test found it."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_freezes_once_per_step_of_growth(unfrozen: None) -> None:
    size = {"n": 0}
    freezer = FreezeOnGrowth(lambda: size["n"], step=10)
    size["n"] = 9
    assert not freezer.check() and gc.get_freeze_count() == 0
    kept = [[i] for i in range(100)]  # long-lived containers made while the rows fill
    size["n"] = 10
    assert freezer.check() and freezer.freezes == 1
    assert gc.get_freeze_count() > 0
    walked = {id(o) for o in gc.get_objects()}  # every generation a pass may walk
    assert gc.is_tracked(kept[0]) and id(kept[0]) not in walked
    assert not freezer.check()  # no growth since: no second freeze
    size["n"] = 3  # a flip starts the new version's rows from nothing: re-based
    assert not freezer.check()
    size["n"] = 12
    assert not freezer.check()
    size["n"] = 13
    assert freezer.check() and freezer.freezes == 2


def test_tune_spaces_full_passes_and_keeps_the_young_ones() -> None:
    was = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        collector.tune(0)  # the default: CPython's own
        assert gc.get_threshold() == (700, 10, 10)
        collector.tune(collector.FULL_PASS_EVERY)
        assert gc.get_threshold() == (700, 10, collector.FULL_PASS_EVERY)
    finally:
        gc.set_threshold(*was)
