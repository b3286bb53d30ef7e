"""The pure rules of live ingest: day partials add to the snapshot's state, which days count,
and the screening of raw rows (the nightly's reasons, tagged items only)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.exposure_days import (
    MAX_LIVE_DAYS,
    add_days,
    add_state,
    bucket_field,
    bucket_of,
    day_end,
    hour_of,
    live_days,
)
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


def test_live_days_start_at_the_watermark_and_its_hour() -> None:
    today = date(2026, 10, 6)
    assert live_days(day_end(date(2026, 10, 5)), today) == [("20261006", 0)]
    assert live_days(day_end(date(2026, 10, 4)), today) == [("20261005", 0), ("20261006", 0)]
    assert live_days(day_end(today), today) == []
    assert live_days(None, today) == [("20261006", 0)]
    nine = int(datetime(2026, 10, 5, 9, tzinfo=UTC).timestamp())
    assert live_days(nine, today) == [("20261005", 9), ("20261006", 0)]
    assert live_days(nine + 1_799, today) == [("20261005", 9), ("20261006", 0)]  # floored
    assert len(live_days(day_end(date(2025, 1, 1)), today)) == MAX_LIVE_DAYS
    assert live_days(day_end(date(2025, 1, 1)), today)[0][1] == 0


def test_bucket_fields_carry_the_hour_and_old_fields_read_as_hour_zero() -> None:
    assert bucket_field(7, "r:1") == "07|r:1"
    assert bucket_of("07|r:1") == (7, "r:1")
    assert bucket_of("r1") == (0, "r1")
    assert hour_of(datetime(2026, 10, 6, 23, 59, 59, tzinfo=UTC).timestamp()) == 23


def test_screening_rejects_with_the_first_reason_and_keeps_tagged_rows() -> None:
    tagged = {"i1": ("r1",), "i2": ("r2", "r1")}
    rows = [
        ("u1", "i1", NOW - 60, "feed", "click"),
        ("u1", "i2", "2026-10-06T11:00:00Z", "search", "share"),
        ("u1", "i9", NOW, "feed", "click"),  # untagged
        ("u2", "i1", NOW - 86_400, "feed", "click"),  # before the snapshot's watermark
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
                 live_after=int(NOW) - 12 * 3_600)  # fmt: skip
    assert [r for r, _ in got.rejects] == [
        "null_or_empty_user_id", "null_or_empty_item_id", "null_ts", "unparseable_ts",
        "unknown_action", "unknown_surface", "invalid_user_id", "ts_in_future",
        "ts_outside_window",
    ]  # fmt: skip
    assert (got.accepted, got.stored, got.untagged, got.covered) == (4, 2, 1, 1)
    day = got.parts[("u1", "20261006")]
    assert day["11|r1"].exposures == 2 and day["11|r1"].strongest_action == 4
    assert day["11|r1"].surface_mask == 0b11 and day["11|r2"].exposures == 1
    late = screen([("u2", "i1", NOW - 60, "feed", "click")], lambda i: tagged.get(i, ()),
                  now=NOW, window_s=30 * 86_400, live_after=int(NOW))  # fmt: skip
    assert (late.covered, late.stored, late.parts) == (1, 0, {}), "before the watermark: logs'"
    assert got.counts()["rejected:unknown_action"] == 1


def test_the_best_tag_score_is_kept_when_days_combine() -> None:
    from domain.exposure_days import add_state
    from domain.records import ExposureState

    matched = ExposureState("r1", 2, 10, 20, 1, 1, (), 0.87)
    hand = ExposureState("r1", 1, 30, 30, 0, 2)
    assert add_state(matched, hand).tag_score == 1.0
    assert add_state(matched, matched).tag_score == 0.87
