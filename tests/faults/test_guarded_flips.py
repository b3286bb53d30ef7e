"""A nightly run that read nothing, has nothing to serve, or would shrink the served snapshot
fails (exit 2, a message with the override) and flips nothing; tags naming no rumor of the
library go to rejects with a reason. Real files, a real redis-server, the real command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from feature_store.connection import RedisSettings
from feature_store.snapshots import current_version
from offline.nightly.guards import FlipGuard, NightlyRefused
from offline.nightly.job import run_nightly

RUN_DATE = date(2026, 10, 5)


@pytest.fixture
def world(small_world: Path, tmp_path: Path) -> Path:
    """A copy of the small world's inputs that a test may break (no item texts: no matching)."""
    out = tmp_path / "world"
    shutil.copytree(small_world / "exposures", out / "exposures")
    for name in ("rumors.jsonl", "debunks.jsonld", "tagged_items.parquet"):
        shutil.copy(small_world / name, out / name)
    return out


@pytest.fixture
def served(world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings) -> str:
    """The version a first, healthy run flipped."""
    run_nightly(world, RUN_DATE, tmp_path / "state", settings, train=False)
    version = current_version(client)
    assert version
    return version


def nightly(
    world: Path, tmp_path: Path, redis_url: str, *extra: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "nightly", "--data", str(world), "--date",
         RUN_DATE.isoformat(), "--state", str(tmp_path / "state"), "--no-train", *extra],
        capture_output=True, text=True, timeout=300, env={**os.environ, "REDIS_URL": redis_url},
    )  # fmt: skip


def _no_logs(world: Path) -> None:
    shutil.rmtree(world / "exposures")


def _empty_logs(world: Path) -> None:
    shutil.rmtree(world / "exposures")
    (world / "exposures").mkdir()


def _file_less_logs(world: Path) -> None:
    for f in (world / "exposures").rglob("*.parquet"):
        f.unlink()


def _unknown_rumors_only(world: Path) -> None:
    reviews = json.loads((world / "debunks.jsonld").read_text())
    for r in reviews:
        r["itemReviewed"]["identifier"] = "nobody-" + r["itemReviewed"]["identifier"]
    (world / "debunks.jsonld").write_text(json.dumps(reviews, ensure_ascii=False))


def _one_user_left(world: Path) -> None:
    for f in (world / "exposures").rglob("*.parquet"):
        table = pq.read_table(f)
        pq.write_table(table.slice(0, 0), f)
    first = sorted((world / "exposures").rglob("*.parquet"))[0]
    tags = pq.read_table(world / "tagged_items.parquet")
    row = {"user_id": ["u-last"], "item_id": [tags["item_id"][0].as_py()],
           "ts": pa.array([1790000000_000000], pa.timestamp("us", tz="UTC"))}  # fmt: skip
    schema = pq.read_schema(first)
    table = pa.table({**row, "surface": ["feed"], "action": ["share"]}).cast(schema)
    pq.write_table(table, first)


BROKEN = {
    "missing log folder": (_no_logs, "does not exist"),
    "empty log folder": (_empty_logs, "no dt= partition"),
    "partitions without files": (_file_less_logs, "hold no Parquet file"),
    "every debunk names an unknown rumor": (_unknown_rumors_only, "no servable debunk"),
    "the snapshot would shrink": (_one_user_left, "a drop of"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_run_that_would_empty_or_shrink_the_feed_flips_nothing(
    case: str, world: Path, tmp_path: Path, served: str, client: redis.Redis, redis_url: str
) -> None:
    breaks, message = BROKEN[case]
    breaks(world)
    done = nightly(world, tmp_path, redis_url)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "--allow-shrink" in done.stderr
    assert "Traceback" not in done.stderr
    assert current_version(client) == served


def test_a_window_without_partitions_is_refused(
    world: Path, tmp_path: Path, served: str, client: redis.Redis, settings: RedisSettings
) -> None:
    with pytest.raises(NightlyRefused, match="no dt= partition from 2027-01-01"):
        run_nightly(world, date(2027, 1, 30), tmp_path / "state", settings, train=False)
    assert current_version(client) == served


def test_allow_shrink_flips_a_shrunken_snapshot_on_purpose(
    world: Path, tmp_path: Path, served: str, client: redis.Redis, settings: RedisSettings
) -> None:
    _one_user_left(world)
    summary = run_nightly(
        world, RUN_DATE, tmp_path / "state", settings, train=False,
        guard=FlipGuard(allow_shrink=True),
    )  # fmt: skip
    assert summary["shrink_check"]["forced"] is True
    assert summary["snapshot"]["users"] == 1
    assert current_version(client) not in (None, served)


def test_tags_naming_no_rumor_go_to_rejects_with_a_reason(
    world: Path, tmp_path: Path, settings: RedisSettings
) -> None:
    tags = pq.read_table(world / "tagged_items.parquet")
    stray = pa.table({"item_id": ["i-stray"], "rumor_id": ["r-nobody"]})
    pq.write_table(
        pa.concat_tables([tags.select(["item_id", "rumor_id"]), stray]),
        world / "tagged_items.parquet",
    )
    summary = run_nightly(world, RUN_DATE, tmp_path / "state", settings, train=False)
    assert summary["tags_rejected"] == 1
    [rejects] = (tmp_path / "state" / "tag_rejects").glob("*.parquet")
    row = pq.read_table(rejects).to_pylist()[0]
    assert row["item_id"] == "i-stray" and row["rumor_id"] == "r-nobody"
    assert "unknown rumor_id" in row["reason"]


def test_a_user_id_outside_the_alphabet_goes_to_rejects_not_silently_away(
    world: Path, tmp_path: Path, settings: RedisSettings
) -> None:
    first = sorted((world / "exposures").rglob("*.parquet"))[0]
    table = pq.read_table(first)
    item = pq.read_table(world / "tagged_items.parquet")["item_id"][0].as_py()
    bad = {"user_id": ["u {1}"], "item_id": [item], "ts": table["ts"][:1].to_pylist(),
           "surface": ["feed"], "action": ["share"]}  # fmt: skip
    pq.write_table(pa.concat_tables([table, pa.table(bad).cast(table.schema)]), first)
    summary = run_nightly(world, RUN_DATE, tmp_path / "state", settings, train=False)
    assert summary["ids_rejected"] == 1
    assert summary["snapshot"]["skipped_invalid_ids"] == 1  # the writer skipped the same pair
    [rejects] = (tmp_path / "state" / "id_rejects").glob("*.parquet")
    row = pq.read_table(rejects).to_pylist()[0]
    assert row["user_id"] == "u {1}" and "outside the id alphabet" in row["reason"]
