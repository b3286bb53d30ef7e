"""``make eval-service`` without CED: the skip, and the CED → input contracts builder on a tiny
hand-written CED folder (the real data is never needed by the tests)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench import eval_service
from bench.ced_world import build, category_of, is_hand_tagged
from offline.io.catalog import load_debunks, load_rumors, load_sourced_tags

T = datetime(2013, 1, 1, tzinfo=UTC)


def tiny_ced(folder: Path) -> Path:
    """Two rumor posts and one non-rumor post, with four engagements (one without a time)."""
    folder.mkdir()
    pq.write_table(pa.table({
        "post_id": ["A1", "A2", "N1"],
        "poster_uid": ["1", "2", "3"],
        "label": ["rumor", "rumor", "non-rumor"],
        "text": ["宁波发生地震，房屋倒塌", "银行明天起停止兑换", "今天天气很好"],
        "ts": pa.array([T, T, T], pa.timestamp("us", tz="UTC")),
    }), folder / "posts.parquet")  # fmt: skip
    pq.write_table(pa.table({
        "post_id": ["A1", "A1", "A2", "N1"],
        "uid": ["10", "11", "10", "12"],
        "mid": ["m1", "m2", "m3", "m4"],
        "parent": ["", "m1", "", ""],
        "text": ["", "太可怕了", "真的吗", "好"],
        "ts": pa.array([T, T.replace(year=2014), None, T.replace(year=2015)],
                       pa.timestamp("us", tz="UTC")),
    }), folder / "engagements.parquet")  # fmt: skip
    return folder


def test_the_evaluation_skips_without_ced(tmp_path: Path, capsys) -> None:
    assert eval_service.main(["--data", str(tmp_path / "absent")]) == 0
    assert "skipped" in capsys.readouterr().out


def test_ced_becomes_the_input_contracts(tmp_path: Path) -> None:
    world = build(tiny_ced(tmp_path / "ced"), tmp_path / "data", date(2026, 11, 30), days=28,
                  hand_share=1.0)  # fmt: skip
    rumors = load_rumors(tmp_path / "data" / "rumors.jsonl")
    assert [(r.rumor_id, r.category, r.confirmed) for r in rumors] == [
        ("r:A1", "disaster", True),
        ("r:A2", "economy", True),
    ]
    assert all(1 <= r.severity <= 5 for r in rumors)
    debunks = load_debunks(tmp_path / "data" / "debunks.jsonl")
    assert [d.rumor_ids for d in debunks] == [("r:A1",), ("r:A2",)]
    tags = load_sourced_tags(tmp_path / "data" / "tagged_items.parquet").to_pylist()
    assert [(t["item_id"], t["source"]) for t in tags] == [("p:A1", "manual"), ("p:A2", "manual")]
    items = pq.read_table(tmp_path / "data" / "items.parquet")
    assert items["item_id"].to_pylist() == ["p:A1", "p:A2", "p:N1"]
    logs = pq.read_table(tmp_path / "data" / "exposures").sort_by("item_id").to_pylist()
    assert world.exposures == 4 and len(logs) == 4
    rows = sorted((r["user_id"], r["item_id"], r["action"], r["surface"]) for r in logs)
    assert rows == [
        ("u10", "p:A1", "share", "feed"),  # no text of its own: a repost
        ("u10", "p:A2", "comment", "comment"),
        ("u11", "p:A1", "share", "feed"),  # a repost of a repost
        ("u12", "p:N1", "comment", "comment"),
    ]
    times = sorted(r["ts"] for r in logs if r["ts"] is not None)
    assert len(times) == 3  # the row without a time stays null: the job rejects it
    assert times[0] == datetime(2026, 11, 3, tzinfo=UTC)  # 28 days before the day after the run
    assert times[-1] < datetime(2026, 12, 1, tzinfo=UTC)


def test_derived_fields_are_pure_functions_of_the_rows() -> None:
    assert category_of("H7N9 病毒 来了") == "epidemic" and category_of("你好") == "other"
    picked = [p for p in (f"p{i}" for i in range(1000)) if is_hand_tagged(p, 0.5)]
    assert 400 < len(picked) < 600
    assert picked == [p for p in (f"p{i}" for i in range(1000)) if is_hand_tagged(p, 0.5)]
    assert not any(is_hand_tagged(f"p{i}", 0.0) for i in range(100))
