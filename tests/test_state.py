"""The incremental nightly state: only new or changed partitions are scanned, re-runs change
nothing, late data and new tags are picked up, old days age out, failures leave the last state."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offline.io.logs import LogSchemaError
from offline.join.engine import join_exposures
from offline.nightly.state import current_generation, update_state
from tests.fixtures.logs import by_pair, t, tags, write_logs

TAGS = tags(("i1", "rA"), ("i2", "rB"))
ROWS = [
    ("u1", "i1", t(1, 8), "feed", "impression"),
    ("u1", "i1", t(2, 9), "group", "share"),
    ("u2", "i2", t(2, 3), "search", "click"),
    ("u3", "i1", t(3, 1), "feed", "share"),
    ("u3", "i9", t(3, 2), "feed", "share"),
]


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return write_logs(tmp_path / "logs", ROWS)


def run(
    logs: Path,
    state: Path,
    day: int,
    tag_table: pa.Table = TAGS,
    lookback: int = 30,
    confirmed: set[str] | None = None,
):
    return update_state(
        logs, tag_table, state, date(2026, 10, day), lookback_days=lookback, confirmed=confirmed
    )


def recomputed(logs: Path, tag_table: pa.Table, dates: list[str]) -> pa.Table:
    return join_exposures(logs, tag_table, dates=dates)[0]


def test_first_run_equals_a_full_join(logs: Path, tmp_path: Path) -> None:
    result = run(logs, tmp_path / "state", 3)
    state = pq.read_table(result.exposures)
    assert state.equals(recomputed(logs, TAGS, ["2026-10-01", "2026-10-02", "2026-10-03"]))
    assert result.summary["partitions"]["scanned"] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert result.summary["join"]["rows_read"] == 5
    assert result.summary["pairs"] == 3
    assert result.summary["peak_rss_mb"] > 0
    assert result.summary["engine"] == "local"


def test_the_engine_is_chosen_by_name_and_named_in_the_summary(logs: Path, tmp_path: Path) -> None:
    result = update_state(logs, TAGS, tmp_path / "state", date(2026, 10, 3), engine="duckdb")
    assert result.summary["engine"] == "duckdb"
    state = pq.read_table(result.exposures)
    assert state.equals(recomputed(logs, TAGS, ["2026-10-01", "2026-10-02", "2026-10-03"]))
    with pytest.raises(ValueError, match="unknown join engine 'flink'"):
        update_state(logs, TAGS, tmp_path / "other", date(2026, 10, 3), engine="flink")


def test_rerunning_the_same_date_scans_nothing_and_changes_nothing(
    logs: Path, tmp_path: Path
) -> None:
    first = pq.read_table(run(logs, tmp_path / "state", 3).exposures)
    again = run(logs, tmp_path / "state", 3)
    assert again.summary["partitions"]["scanned"] == []
    assert again.summary["join"]["rows_read"] == 0
    assert pq.read_table(again.exposures).equals(first)
    assert by_pair(first)[("u1", "rA")]["exposures"] == 2  # not double counted


def test_a_late_partition_for_an_earlier_date_is_picked_up(logs: Path, tmp_path: Path) -> None:
    run(logs, tmp_path / "state", 2)
    write_logs(logs, [("u9", "i2", t(1, 5), "comment", "like")], name="late.parquet")
    later = run(logs, tmp_path / "state", 3)
    assert later.summary["partitions"]["scanned"] == ["2026-10-01", "2026-10-03"]
    state = pq.read_table(later.exposures)
    assert state.equals(recomputed(logs, TAGS, ["2026-10-01", "2026-10-02", "2026-10-03"]))
    assert by_pair(state)[("u9", "rB")]["strongest_action"] == "like"


def test_old_partitions_age_out_of_the_lookback_window(logs: Path, tmp_path: Path) -> None:
    run(logs, tmp_path / "state", 3)
    aged = run(logs, tmp_path / "state", 3, lookback=1)
    assert aged.summary["partitions"]["aged_out"] == ["2026-10-01", "2026-10-02"]
    assert set(by_pair(pq.read_table(aged.exposures))) == {("u3", "rA")}


def test_a_new_tag_is_backfilled_by_scanning_only_for_it(logs: Path, tmp_path: Path) -> None:
    run(logs, tmp_path / "state", 3)
    more = tags(("i1", "rA"), ("i2", "rB"), ("i9", "rC"))
    result = run(logs, tmp_path / "state", 3, more)
    assert result.summary["tags"] == {"added": 1, "removed": 0}
    assert result.summary["partitions"]["scanned"] == []
    assert result.summary["partitions"]["backfilled"] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert result.summary["backfill"]["rows_kept"] == 1  # only the rows of the new item
    state = pq.read_table(result.exposures)
    assert state.equals(recomputed(logs, more, ["2026-10-01", "2026-10-02", "2026-10-03"]))
    assert by_pair(state)[("u3", "rC")]["shared"] is True


def test_a_removed_tag_rescans_the_window(logs: Path, tmp_path: Path) -> None:
    run(logs, tmp_path / "state", 3)
    fewer = tags(("i1", "rA"))
    result = run(logs, tmp_path / "state", 3, fewer)
    assert result.summary["tags"]["removed"] == 1
    assert ("u2", "rB") not in by_pair(pq.read_table(result.exposures))


def test_a_withdrawn_rumor_disappears_from_the_state(logs: Path, tmp_path: Path) -> None:
    result = run(logs, tmp_path / "state", 3, confirmed={"rB"})
    assert {r for _, r in by_pair(pq.read_table(result.exposures))} == {"rB"}
    assert pq.read_table(result.audience)["rumor_id"].to_pylist() == ["rB"]


def test_audience_counts_users_sharers_surfaces_and_earliest_sharers(
    logs: Path, tmp_path: Path
) -> None:
    audience = pq.read_table(run(logs, tmp_path / "state", 3).audience).to_pylist()
    a = next(r for r in audience if r["rumor_id"] == "rA")
    assert (a["exposed_users"], a["sharers"], a["exposures"]) == (2, 2, 3)
    assert (a["exposures_feed"], a["exposures_group"], a["exposures_search"]) == (2, 1, 0)
    assert a["earliest_sharers"] == ["u1", "u3"]  # u1 shared on day 2, u3 on day 3
    assert a["first_shared_at"] == t(2, 9)


def test_bad_rows_go_to_the_rejects_dataset_with_a_reason(tmp_path: Path) -> None:
    logs = write_logs(
        tmp_path / "logs",
        [
            ("u1", "i1", t(1, 1), "feed", "click"),
            ("", "i1", t(1, 2), "feed", "click"),
            ("u2", "i1", t(1, 3), "feed", "retweet"),
        ],
    )
    result = run(logs, tmp_path / "state", 1)
    assert result.summary["join"]["rows_rejected"] == {
        "null_or_empty_user_id": 1,
        "unknown_action": 1,
    }
    [rejects_file] = (tmp_path / "state" / "rejects").rglob("*.parquet")
    rejects = pq.read_table(rejects_file).to_pylist()
    assert sorted((r["reason"], r["action"]) for r in rejects) == [
        ("null_or_empty_user_id", "click"),
        ("unknown_action", "retweet"),
    ]
    assert all(r["file"].endswith("dt=2026-10-01/part-0.parquet") for r in rejects)


def test_a_bad_schema_fails_naming_file_and_column_and_keeps_the_last_state(
    logs: Path, tmp_path: Path
) -> None:
    good = run(logs, tmp_path / "state", 2)
    bad = logs / "dt=2026-10-03" / "broken.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": ["u1"],
                "item_id": ["i1"],
                "ts": [5],
                "surface": ["feed"],
                "action": ["click"],
            }
        ),
        bad,
    )
    with pytest.raises(LogSchemaError, match=r"broken.parquet: column 'ts' has type int64"):
        run(logs, tmp_path / "state", 3)
    assert current_generation(tmp_path / "state") == good.generation.resolve()
    assert pq.read_table(good.exposures).equals(
        recomputed(logs, TAGS, ["2026-10-01", "2026-10-02"])
    )
    bad.unlink()
    pq.write_table(pa.table({"user_id": ["u1"], "item_id": ["i1"]}), bad)
    with pytest.raises(LogSchemaError, match=r"broken.parquet: missing column 'ts'"):
        run(logs, tmp_path / "state", 3)


def test_a_run_killed_before_the_flip_leaves_the_previous_state(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = run(logs, tmp_path / "state", 2)
    from offline.nightly.state import StateUpdate

    def die(self, generation):
        raise KeyboardInterrupt

    monkeypatch.setattr(StateUpdate, "_flip", die)
    with pytest.raises(KeyboardInterrupt):
        run(logs, tmp_path / "state", 3)
    assert current_generation(tmp_path / "state") == good.generation.resolve()
    monkeypatch.undo()
    after = run(logs, tmp_path / "state", 3)
    assert pq.read_table(after.exposures).equals(
        recomputed(logs, TAGS, ["2026-10-01", "2026-10-02", "2026-10-03"])
    )


def test_unreferenced_files_are_collected(logs: Path, tmp_path: Path) -> None:
    for _ in range(4):
        write_logs(logs, [("u1", "i1", t(1, 9), "feed", "click")], name="more.parquet")
        run(logs, tmp_path / "state", 3)
    generations = list((tmp_path / "state" / "generations").iterdir())
    assert len(generations) == 2
    pairs_files = list((tmp_path / "state" / "parts" / "dt=2026-10-01").glob("pairs-*"))
    assert len(pairs_files) <= 2


def test_timestamps_as_text_are_parsed_and_bad_ones_rejected(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "dt=2026-10-01").mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "user_id": ["u1", "u2"],
                "item_id": ["i1", "i1"],
                "ts": ["2026-10-01T05:00:00Z", "yesterday"],
                "surface": ["feed", "feed"],
                "action": ["click", "click"],
            }
        ),
        logs / "dt=2026-10-01" / "p.parquet",
    )
    result = run(logs, tmp_path / "state", 1)
    assert result.summary["join"]["rows_rejected"] == {"unparseable_ts": 1}
    assert by_pair(pq.read_table(result.exposures))[("u1", "rA")]["first_ts"] == t(1, 5)
