"""The pure rules of live ingest: day partials add to the snapshot's state, which days count,
and the screening of raw rows (the nightly's reasons, tagged items only)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.exposure_days import MAX_LIVE_DAYS, add_days, add_state, live_days
from domain.exposure_screen import screen
from domain.records import ExposureState

NOW = datetime(2026, 10, 6, 12, tzinfo=UTC).timestamp()


def test_partials_add_by_the_nightly_rule() -> None:
    a = ExposureState("r1", 3, 100, 200, 1, 0b01, (0.5,))
    b = ExposureState("r1", 2, 50, 150, 4, 0b10)
    assert add_state(a, b) == ExposureState("r1", 5, 50, 200, 4, 0b11, (0.5,))


def test_days_add_to_snapshot_states_and_bring_new_rumors_sorted() -> None:
    snap = [ExposureState("r2", 1, 10, 10, 0, 1), ExposureState("r1", 1, 20, 20, 0, 1)]
    day1 = {"r1": ExposureState("r1", 2, 30, 40, 2, 4), "r9": ExposureState("r9", 1, 5, 5, 0, 1)}
    day2 = {"r1": ExposureState("r1", 1, 50, 50, 0, 1), "r3": ExposureState("r3", 1, 6, 6, 0, 1)}
    got = add_days(snap, [day1, day2])
    assert [s.rumor_id for s in got] == ["r2", "r1", "r3", "r9"]
    assert got[1] == ExposureState("r1", 4, 20, 50, 2, 5)
    assert add_days(snap, [{}, {}]) is snap


def test_live_days_are_those_after_the_covered_day() -> None:
    assert live_days(date(2026, 10, 5), date(2026, 10, 6)) == ["20261006"]
    assert live_days(date(2026, 10, 4), date(2026, 10, 6)) == ["20261005", "20261006"]
    assert live_days(date(2026, 10, 6), date(2026, 10, 6)) == []
    assert live_days(None, date(2026, 10, 6)) == ["20261006"]
    assert len(live_days(date(2025, 1, 1), date(2026, 10, 6))) == MAX_LIVE_DAYS


def test_screening_rejects_with_the_first_reason_and_keeps_tagged_rows() -> None:
    tagged = {"i1": ("r1",), "i2": ("r2", "r1")}
    rows = [
        ("u1", "i1", NOW - 60, "feed", "click"),
        ("u1", "i2", "2026-10-06T11:00:00Z", "search", "share"),
        ("u1", "i9", NOW, "feed", "click"),  # untagged
        ("u2", "i1", NOW - 86_400, "feed", "click"),  # a day the snapshot covers
        ("", "i1", NOW, "feed", "click"),
        ("u3", "", NOW, "feed", "click"),
        ("u3", "i1", None, "feed", "click"),
        ("u3", "i1", "yesterday", "feed", "click"),
        ("u3", "i1", NOW, "feed", "poke"),
        ("u3", "i1", NOW, "tv", "click"),
        ("u 3", "i1", NOW, "feed", "click"),
        ("u3", "i1", NOW + 3600, "feed", "click"),
        ("u3", "i1", NOW - 31 * 86_400, "feed", "click"),
    ]
    got = screen(rows, lambda i: tagged.get(i, ()), now=NOW, window_s=30 * 86_400,
                 covered_through="20261005")  # fmt: skip
    assert [r for r, _ in got.rejects] == [
        "null_or_empty_user_id", "null_or_empty_item_id", "null_ts", "unparseable_ts",
        "unknown_action", "unknown_surface", "invalid_user_id", "ts_in_future",
        "ts_outside_window",
    ]  # fmt: skip
    assert (got.accepted, got.stored, got.untagged, got.covered) == (4, 2, 1, 1)
    day = got.parts[("u1", "20261006")]
    assert day["r1"].exposures == 2 and day["r1"].strongest_action == 4
    assert day["r1"].surface_mask == 0b11 and day["r2"].exposures == 1
    assert got.counts()["rejected:unknown_action"] == 1


def test_the_best_tag_score_is_kept_when_days_combine() -> None:
    from domain.exposure_days import add_state
    from domain.records import ExposureState

    matched = ExposureState("r1", 2, 10, 20, 1, 1, (), 0.87)
    hand = ExposureState("r1", 1, 30, 30, 0, 2)
    assert add_state(matched, hand).tag_score == 1.0
    assert add_state(matched, matched).tag_score == 0.87
