"""The exposure-join sweep's inputs: one skewed log world, rewritten in the Parquet layouts real
writers produce, and tag sets that put a chosen share of the rows on tagged items.

The world is generated here (not by offline.synth) so that its skew and its hit rate are set
directly: heavy users (lognormal activity), items that live a few days with lognormal
popularity, and a few viral items per day that take a large share of that day's views. Rows of a
day are in time order, one file per day, as a logging pipeline writes them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.vocab import ACTIONS, SURFACES
from offline.synth.ids import item_ids, rumor_ids, user_ids
from offline.synth.writers import LOG_OPTIONS

TS = pa.timestamp("us", tz="UTC")
DAY_US = 86_400 * 1_000_000
EPOCH_US = 1_790_000_000 * 1_000_000  # a day in 2026
ITEMS_PER_DAY = 40_000
ITEM_LIFE_DAYS = 3
VIRAL_PER_DAY = 4
VIRAL_SHARE = 0.12  # of a day's views, shared by that day's viral items
SURFACE_WEIGHTS = np.array([0.55, 0.15, 0.1, 0.1, 0.05, 0.05])  # in SURFACES order
ACTION_WEIGHTS = np.array([0.8, 0.1, 0.05, 0.03, 0.02])  # in ACTIONS order
# Rows pyarrow and parquet-mr put in a row group (pyarrow: at most 1Mi rows; parquet-mr: what
# 128 MB of buffered pages hold, sized from a sample in spark_row_group_rows).
PYARROW_GROUP_ROWS = 1 << 20
SPARK_BLOCK_BYTES = 128 << 20
# Spark writes a day as one file per task; a file under 128 MB is one row group.
SPARK_FILES_PER_DAY = 4


@dataclass(frozen=True)
class Layout:
    """How one writer lays the logs out: pq.write_table options, described for the table."""

    name: str
    description: str
    options: dict[str, Any]


def layouts(spark_group_rows: int) -> dict[str, Layout]:
    """Every layout of the sweep by name (Spark's row group size measured on this world)."""
    spark = {
        "compression": "snappy",
        "use_dictionary": True,
        "dictionary_pagesize_limit": 1 << 20,
        "data_page_size": 1 << 20,
        "store_schema": False,
        "row_group_size": spark_group_rows,
    }
    generator = {"compression": "zstd", "compression_level": 1, **LOG_OPTIONS}
    return {
        "generator": Layout(
            "generator", "zstd-1, plain ids (our generator), 1Mi-row groups", generator
        ),
        "pyarrow": Layout("pyarrow", "snappy, dictionary ids, 1Mi-row groups (pyarrow)", {}),
        "spark": Layout(
            "spark",
            f"snappy, dictionary ids, 1 MB dict pages, {SPARK_FILES_PER_DAY} files a day, "
            f"a file's rows or {spark_group_rows} (128 MB) a row group (Spark-like)",
            spark,
        ),
        "pyspark": Layout("pyspark", "written by PySpark (see bench/exposure_pyspark.py)", {}),
        "pyarrow-128k": Layout(
            "pyarrow-128k",
            "snappy, dictionary ids, 128Ki-row groups",
            {"row_group_size": 1 << 17},
        ),
        "zstd-dict": Layout(
            "zstd-dict",
            "zstd-1, dictionary ids, 1Mi-row groups",
            {"compression": "zstd", "compression_level": 1},
        ),
        "snappy-plain": Layout(
            "snappy-plain",
            "snappy, plain ids, 1Mi-row groups",
            {"compression": "snappy", "use_dictionary": ["surface", "action"]},
        ),
    }


QUICK_LAYOUTS = ("generator", "pyarrow", "spark", "pyspark", "pyarrow-128k")
FULL_LAYOUTS = (*QUICK_LAYOUTS, "zstd-dict", "snappy-plain")
# Written by PySpark from the pyarrow layout's files (bench/exposure_pyspark.py), after it.
REWRITTEN = {"pyspark": "pyarrow"}
HIT_RATES = (0.001, 0.01, 0.05, 0.10)


def _day(rng: np.random.Generator, day: int, rows: int, user_weight: np.ndarray) -> pa.Table:
    """One day of log rows in time order: heavy users, short-lived items, a few viral ones."""
    first_item = max(0, day - ITEM_LIFE_DAYS + 1) * ITEMS_PER_DAY
    live = np.arange(first_item, (day + 1) * ITEMS_PER_DAY)
    age = day - live // ITEMS_PER_DAY
    popularity = np.random.default_rng(live[0] + 7).lognormal(0.0, 1.6, len(live))
    weight = popularity * np.power(0.4, age)
    weight = weight / weight.sum() * (1 - VIRAL_SHARE)
    viral = rng.choice(np.flatnonzero(age == 0), VIRAL_PER_DAY, replace=False)
    weight[viral] += VIRAL_SHARE / VIRAL_PER_DAY
    items = live[np.searchsorted(np.cumsum(weight), rng.random(rows) * weight.sum())]
    items = np.minimum(items, live[-1])
    users = np.searchsorted(user_weight, rng.random(rows) * user_weight[-1])
    ts = EPOCH_US + day * DAY_US + np.sort(rng.integers(0, DAY_US, rows))
    surface = rng.choice(len(SURFACES), rows, p=SURFACE_WEIGHTS / SURFACE_WEIGHTS.sum())
    action = rng.choice(len(ACTIONS), rows, p=ACTION_WEIGHTS / ACTION_WEIGHTS.sum())
    return pa.table(
        {
            "user_id": user_ids(users),
            "item_id": item_ids(items),
            "ts": pa.array(ts, pa.timestamp("us")).cast(TS),
            "surface": pc.take(pa.array(SURFACES), pa.array(surface)),
            "action": pc.take(pa.array(ACTIONS), pa.array(action)),
        }
    )


def _shifted(table: pa.Table, offset_days: int, users: int) -> pa.Table:
    """An earlier day moved ``offset_days`` on: its items are that many days' new items later
    (so other items, other tags), its users rotated (other pairs), its times shifted."""
    user = pc.cast(pc.utf8_slice_codeunits(table["user_id"], 1), pa.int64()).to_numpy()
    item = pc.cast(pc.utf8_slice_codeunits(table["item_id"], 1), pa.int64()).to_numpy()
    ts = pc.cast(table["ts"], pa.int64()).to_numpy() + offset_days * DAY_US
    return (
        table.set_column(0, "user_id", user_ids((user + offset_days * 104_729) % users))
        .set_column(1, "item_id", item_ids(item + offset_days * ITEMS_PER_DAY))
        .set_column(2, "ts", pa.array(ts, pa.timestamp("us")).cast(TS))
    )


def _write_day(folder: Path, table: pa.Table, layout: Layout) -> None:
    """One day in a layout: one file, or Spark's one file per task (rows split evenly)."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = SPARK_FILES_PER_DAY if layout.name == "spark" else 1
    step = -(-table.num_rows // parts)
    for i in range(parts):
        part = table.slice(i * step, step)
        pq.write_table(part, folder / f"part-{i:05d}.parquet", **layout.options)


def spark_row_group_rows(sample: pa.Table) -> int:
    """Rows in 128 MB of dictionary-encoded pages, as parquet-mr's block size counts them:
    the sample's uncompressed column-chunk bytes per row, scaled."""
    sink = pa.BufferOutputStream()
    pq.write_table(sample, sink, compression="none", row_group_size=sample.num_rows)
    meta = pq.read_metadata(pa.BufferReader(sink.getvalue()))
    size = sum(meta.row_group(0).column(i).total_uncompressed_size for i in range(5))
    return int(SPARK_BLOCK_BYTES / (size / sample.num_rows)) // 1024 * 1024


def ensure_world(
    root: Path,
    users: int,
    days: int,
    rows: int,
    seed: int,
    names: tuple[str, ...],
    distinct_days: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The sweep world under ``root`` in every layout of ``names``; (folder, its metadata).

    Days are generated once (seeded) and written in each layout; a layout already on disk is
    kept. With ``distinct_days``, later days are earlier ones shifted (see _shifted), which
    writes a large world several times faster. Returns the world folder and its world.json
    (item row counts are in items.parquet)."""
    distinct_days = min(days, distinct_days or days)
    root.mkdir(parents=True, exist_ok=True)
    meta_path = root / "world.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    missing = [n for n in names if n not in meta.get("layouts", {})]
    if not missing:
        return root, meta
    written = [n for n in missing if n not in REWRITTEN]
    written += [
        s for n, s in REWRITTEN.items() if n in missing and s not in meta.get("layouts", {})
    ]
    written = list(dict.fromkeys(written))
    rng = np.random.default_rng(seed)
    user_weight = np.cumsum(rng.lognormal(0.0, 1.5, users))
    per_day = rows // days
    counts = np.zeros(days * ITEMS_PER_DAY, dtype=np.int64)
    spark_rows = meta.get("spark_group_rows")
    all_layouts: dict[str, Layout] | None = None
    generated: list[pa.Table] = []
    for day in range(days):
        if day < distinct_days:
            table = _day(rng, day, per_day, user_weight)
            generated.append(table)
        else:
            table = _shifted(generated[day % distinct_days], day - day % distinct_days, users)
        if spark_rows is None:
            spark_rows = spark_row_group_rows(table.slice(0, 1 << 20))
        all_layouts = all_layouts or layouts(spark_rows)
        idx = pc.cast(pc.utf8_slice_codeunits(table["item_id"], 1), pa.int64()).to_numpy()
        counts += np.bincount(idx, minlength=len(counts))
        for name in written:
            _write_day(root / name / "exposures" / f"dt=day{day:03d}", table, all_layouts[name])
    pq.write_table(pa.table({"rows": counts}), root / "items.parquet")
    assert all_layouts is not None
    descriptions = {n: all_layouts[n].description for n in written}
    if "pyspark" in missing:
        from bench.exposure_pyspark import write_pyspark

        descriptions["pyspark"] = write_pyspark(
            root / "pyarrow" / "exposures", root / "pyspark" / "exposures", SPARK_FILES_PER_DAY
        )
    meta = {
        "users": users, "days": days, "rows": per_day * days, "seed": seed,
        "distinct_days": distinct_days,
        "spark_group_rows": spark_rows,
        "layouts": {**meta.get("layouts", {}), **descriptions},
    }  # fmt: skip
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return root, meta


def ensure_tags(root: Path, rate: float, seed: int) -> tuple[Path, float]:
    """A tag file whose items carry about ``rate`` of the world's rows (items in a seeded random
    order, each taken while the share stays at or under the rate); (path, the share reached).

    Rumors have ~20 items each, and 1% of the items carry a second rumor."""
    path = root / f"tags-{rate:g}.parquet"
    counts = pq.read_table(root / "items.parquet")["rows"].to_numpy()
    rng = np.random.default_rng(seed + int(rate * 1e6))
    order = rng.permutation(len(counts))
    order = order[counts[order] > 0]
    taken, room = [], rate * counts.sum()
    for item in order:  # take each item that still fits: the share ends just under the rate
        if counts[item] <= room:
            taken.append(item)
            room -= counts[item]
    taken = np.array(taken, dtype=np.int64)
    share = float(counts[taken].sum() / counts.sum())
    if not path.exists():
        rumors = np.arange(len(taken)) // 20
        twice = taken[rng.random(len(taken)) < 0.01]
        items = np.concatenate([taken, twice])
        rumor = np.concatenate([rumors, rng.integers(0, max(1, rumors.max() + 1), len(twice))])
        table = pa.table({"item_id": item_ids(items), "rumor_id": rumor_ids(rumor)})
        pq.write_table(table, path)
    return path, share


def clear(root: Path) -> None:
    """Remove a sweep world (its layouts and tag files)."""
    shutil.rmtree(root, ignore_errors=True)
