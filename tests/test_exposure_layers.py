"""The merge rule of live (backfilled) and snapshot exposure states: the newer layer is the whole
truth for a (user, rumor), and the two are never added."""

from __future__ import annotations

from domain.exposure_layers import exposed_in_layers, live_wins, merge_layers
from domain.records import ExposureState


def state(rumor: str, n: int, last: int = 100) -> ExposureState:
    return ExposureState(rumor, n, 10, last, 0, 1)


SNAP = [state("r1", 2), state("r2", 5)]


def test_a_newer_live_entry_replaces_the_snapshot_pair_and_is_not_added() -> None:
    merged = merge_layers(SNAP, {"r2": (state("r2", 7, 200), 2_000)}, 1_000)
    assert merged == [state("r1", 2), state("r2", 7, 200)]
    assert sum(s.exposures for s in merged) == 9  # 2 + 7, not 2 + 5 + 7


def test_a_live_entry_not_newer_than_the_snapshot_is_ignored() -> None:
    assert merge_layers(SNAP, {"r2": (state("r2", 7), 1_000)}, 1_000) == SNAP
    assert merge_layers(SNAP, {"r2": (state("r2", 7), 999)}, 1_000) == SNAP
    assert merge_layers(SNAP, {"r9": (state("r9", 1), 5)}, 1_000) == SNAP


def test_new_rumors_from_the_live_layer_come_after_the_snapshot_sorted() -> None:
    live = {"r9": (state("r9", 1), 2_000), "r3": (state("r3", 4), 2_000)}
    assert merge_layers(SNAP, live, 1_000) == [*SNAP, state("r3", 4), state("r9", 1)]
    assert merge_layers([], live, 0) == [state("r3", 4), state("r9", 1)]


def test_no_live_entries_leave_the_snapshot_list_itself() -> None:
    assert merge_layers(SNAP, {}, 0) is SNAP


def test_exposed_in_layers() -> None:
    assert live_wins(2, 1) and not live_wins(1, 1)
    assert exposed_in_layers(True, None, 5)
    assert exposed_in_layers(True, 1, 5)  # an older live entry never hides the snapshot's
    assert exposed_in_layers(False, 6, 5)
    assert not exposed_in_layers(False, 5, 5)
    assert not exposed_in_layers(False, None, 0)
