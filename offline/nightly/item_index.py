"""The item-keyed index of the exposure logs: per log partition, which row groups of which files
hold each item, so a new tag reads only the row groups that can hold its items.

One Parquet file per partition, ``STATE/item_index/dt=D/index-<fingerprint>.parquet``: rows
(item_id, file, row_group), sorted by item_id, zstd, the file names dictionary-encoded, small
row groups with min/max statistics, so a lookup of a few items reads a few index row groups.
It is named by the partition's fingerprint (offline.io.logs): a late or rewritten file gives a
new name, and a partition whose index is missing or stale is read whole by the backfill. Built
by the nightly job after the state update (a separate pass over the item_id column only, on
local partitions, whatever the join engine), written aside then renamed, so re-running builds
nothing; partitions that aged out of the lookback window and stale fingerprints are removed.

Why row-group pointers rather than item-sorted (item, user) aggregates: see
docs/decisions/0029-item-index-and-backfill.md (measured: the aggregates are about the size of
the logs, the pointers a few percent, and the backfill's exact scan of the named row groups is
the nightly's own scan code, so both give the same states).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from offline.io.tempfiles import temp_path
from offline.join.engine import JoinEngine, is_remote

INDEX_DIR = "item_index"
INDEX_SCHEMA = pa.schema(
    [("item_id", pa.string()), ("file", pa.string()), ("row_group", pa.int32())]
)
# Index row groups this small keep a lookup of one item to one small read (statistics prune).
INDEX_ROW_GROUP = 65_536


@dataclass
class IndexSummary:
    """What one index update built, kept and removed."""

    built: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped_remote: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def index_path(state_dir: Path, dt: str, fingerprint: str) -> Path:
    """Where the index of partition ``dt`` with files ``fingerprint`` lives."""
    return state_dir / INDEX_DIR / f"dt={dt}" / f"index-{fingerprint}.parquet"


def _row_group_items(path: str, row_group: int) -> pa.Array:
    """The distinct non-empty item ids of one row group (its item_id column alone)."""
    reader = pq.ParquetFile(path, read_dictionary=["item_id"], pre_buffer=False)
    column = reader.read_row_group(row_group, columns=["item_id"], use_threads=False)["item_id"]
    parts = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            used = pc.unique(chunk.indices.drop_null())
            parts.append(pc.cast(chunk.dictionary.take(used), pa.string()))
        else:
            parts.append(pc.cast(pc.unique(chunk.drop_null()), pa.string()))
    if not parts:
        return pa.array([], pa.string())
    items = pc.unique(pa.concat_arrays(parts))
    return items.filter(pc.greater(pc.binary_length(items), 0))


def build_index(files: Sequence[Path], workers: int = 2) -> pa.Table:
    """The (item_id, file, row_group) rows of one partition's ``files``, sorted by item_id;
    each row group is read on one of ``workers`` threads (Arrow releases the GIL)."""
    tasks = [(str(f), f.name, rg) for f in files for rg in range(pq.ParquetFile(f).num_row_groups)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = list(pool.map(lambda t: _row_group_items(t[0], t[2]), tasks))
    tables = [
        pa.table(
            {
                "item_id": items,
                "file": pa.array([name] * len(items), pa.string()),
                "row_group": pa.array([rg] * len(items), pa.int32()),
            },
            schema=INDEX_SCHEMA,
        )
        for (_, name, rg), items in zip(tasks, found, strict=True)
    ]
    if not tables:
        return INDEX_SCHEMA.empty_table()
    return pa.concat_tables(tables).sort_by(
        [("item_id", "ascending"), ("file", "ascending"), ("row_group", "ascending")]
    )


def write_index(table: pa.Table, path: Path) -> int:
    """Write an index aside and rename it into place; returns its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    pq.write_table(
        table, tmp, compression="zstd", row_group_size=INDEX_ROW_GROUP,
        use_dictionary=["file"], write_statistics=True,
    )  # fmt: skip
    tmp.replace(path)
    return path.stat().st_size


def update_index(
    logs: Path | str,
    state_dir: Path,
    dts: list[str],
    engine: JoinEngine,
    *,
    workers: int = 2,
) -> IndexSummary:
    """Bring the item index up to the partitions ``dts`` (the lookback window): build what is
    missing or stale, remove every other partition's or fingerprint's index."""
    started = time.perf_counter()
    summary = IndexSummary()
    wanted: set[Path] = set()
    for dt in dts:
        _, files = engine.log_files(logs, [dt])
        if any(is_remote(f) for f in files):
            summary.skipped_remote.append(dt)
            continue
        path = index_path(state_dir, dt, engine.fingerprint(files))
        wanted.add(path)
        if path.exists():
            summary.kept.append(dt)
            continue
        table = build_index([Path(f) for f in files], workers)
        summary.bytes += write_index(table, path)
        summary.rows += table.num_rows
        summary.built.append(dt)
    summary.removed = _prune(state_dir, wanted)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _prune(state_dir: Path, wanted: set[Path]) -> list[str]:
    """Remove index files not in ``wanted`` (and folders left empty); their partitions."""
    root = state_dir / INDEX_DIR
    removed: list[str] = []
    if not root.exists():
        return removed
    for folder in sorted(root.glob("dt=*")):
        for f in folder.glob("index-*.parquet"):
            if f not in wanted:
                f.unlink(missing_ok=True)
                removed.append(folder.name[3:])
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
    if not any(root.iterdir()):
        shutil.rmtree(root, ignore_errors=True)
    return sorted(set(removed))


def lookup(path: Path, item_ids: Sequence[str]) -> dict[str, list[int]]:
    """File name -> sorted row groups that hold any of ``item_ids``, from one partition's
    index; only index row groups whose statistics can hold an id are read."""
    if not item_ids:
        return {}
    wanted = pa.array(sorted(set(item_ids)), pa.string())
    hits = pq.read_table(
        path, columns=["file", "row_group"], filters=pc.field("item_id").isin(wanted)
    )
    out: dict[str, set[int]] = {}
    for name, rg in zip(hits["file"].to_pylist(), hits["row_group"].to_pylist(), strict=True):
        out.setdefault(name, set()).add(rg)
    return {name: sorted(groups) for name, groups in sorted(out.items())}
