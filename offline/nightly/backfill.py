"""Confirmation backfill: a new tag's audience over the lookback window, straight into the live
exposure state, in minutes rather than at the next nightly.

For one rumor, the items it carries (the current state generation's tags plus the new ones) are
looked up in each partition's item index (offline.nightly.item_index); only the row groups that
can hold them are read, through the local engine's own scan (validation, prefilter, exact join,
aggregation), and the per-user states are computed exactly as the nightly computes them
(offline.join.aggregate). They are written under ``dbk:lx:{user}`` with an as-of stamp taken
before the tags were read (feature_store.live_exposures), so the service prefers them to a
snapshot whose nightly read its tags earlier, and drops them once a later nightly folded the
tag in (domain.exposure_layers). A partition without a current index is read whole.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis

from domain.ids import check_id
from feature_store.connection import RedisSettings
from feature_store.live_exposures import DAY_S, write_live_exposures
from offline.io import logs as logfiles
from offline.join.contracts import JoinSummary, Partial, prepare_tags
from offline.join.local import LocalEngine, scan_files
from offline.nightly.item_index import index_path, lookup
from offline.nightly.manifest import Manifest
from offline.nightly.state import window


def run_date_of(now: datetime | date | float) -> date:
    """The UTC day whose window a backfill at ``now`` covers (as the nightly of that day)."""
    if isinstance(now, datetime):
        return now.astimezone(UTC).date() if now.tzinfo else now.date()
    if isinstance(now, date):
        return now
    return datetime.fromtimestamp(float(now), UTC).date()


def rumor_items(state_dir: Path, rumor_id: str, new_items: Sequence[str]) -> list[str]:
    """Every item the rumor carries once the new tags apply: the tags the current state
    generation was built from, plus ``new_items``, sorted."""
    items = set(new_items)
    manifest = Manifest.load(state_dir / "current" / "manifest.json")
    if manifest.tags_file and (state_dir / manifest.tags_file).exists():
        tags = pq.read_table(state_dir / manifest.tags_file)
        mine = tags.filter(pc.equal(tags["rumor_id"], rumor_id))
        items.update(mine["item_id"].to_pylist())
    return sorted(items)


def plan_reads(
    logs: Path, state_dir: Path, dts: list[str], items: Sequence[str]
) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """File path -> the row groups to read for ``items`` over the partitions ``dts``, and what
    the plan looked like (indexed and unindexed partitions, row groups read and in all)."""
    engine = LocalEngine()
    groups: dict[str, list[int]] = {}
    stats = {"partitions": len(dts), "indexed": 0, "unindexed": [], "row_groups_total": 0}
    for dt in dts:
        files = logfiles.partition_files(logs, dt)
        counts = {str(f): pq.ParquetFile(f).metadata.num_row_groups for f in files}
        stats["row_groups_total"] += sum(counts.values())
        path = index_path(state_dir, dt, engine.fingerprint(files))
        if not path.exists():
            stats["unindexed"].append(dt)
            groups.update({f: list(range(n)) for f, n in counts.items()})
            continue
        stats["indexed"] += 1
        for name, rgs in lookup(path, items).items():
            groups[str(logs / f"dt={dt}" / name)] = rgs
    stats["row_groups_read"] = sum(len(g) for g in groups.values())
    stats["files_read"] = len(groups)
    return groups, stats


def compute_backfill(
    logs: Path,
    state_dir: Path,
    items: Sequence[str],
    rumor_id: str,
    run_date: date,
    lookback_days: int,
    *,
    workers: int = 2,
) -> tuple[pa.Table, dict[str, Any]]:
    """The per-user exposure states (STATE_SCHEMA) of ``rumor_id`` over ``items`` in the window
    ending ``run_date``, and the read's statistics; nothing is written."""
    started = time.perf_counter()
    dts = window(run_date, lookback_days, logfiles.partitions(logs))
    groups, stats = plan_reads(logs, state_dir, dts, items)
    planned = time.perf_counter()
    tags = prepare_tags(pa.table({"item_id": list(items), "rumor_id": [rumor_id] * len(items)}))
    summary = JoinSummary(partitions=len(dts))
    partial = Partial.empty()
    if groups and tags.num_rows:
        checked = logfiles.check_files([Path(f) for f in sorted(groups)])
        partial = scan_files(checked, tags, summary, row_groups=groups, workers=workers)
    state = LocalEngine().merge_state([partial], {rumor_id}).exposures
    stats.update(
        window=[dts[0], dts[-1]] if dts else [],
        rows_read=summary.rows_read,
        rows_kept=summary.rows_kept,
        lookup_s=round(planned - started, 3),
        scan_s=round(time.perf_counter() - planned, 3),
    )
    return state, stats


def backfill_tag(
    data_dir: Path,
    state_dir: Path,
    item_ids: Sequence[str],
    rumor_id: str,
    store: redis.Redis | RedisSettings,
    now: datetime | date | float,
    lookback_days: int = 30,
    *,
    logs: Path | None = None,
    as_of_ms: int | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """Backfill the audience of ``rumor_id`` once ``item_ids`` carry it (call it after the tags
    are in the tags input) into the live exposure state; returns a summary.

    The window is the ``lookback_days`` partitions of ``data_dir/exposures`` (or ``logs``)
    ending on ``now``'s UTC day, as the nightly of that day reads them; the states cover every
    item the rumor carries (rumor_items), so they equal that nightly's. ``store`` is a Redis
    client or settings; ``as_of_ms`` (default: now, taken before the tags are read) stamps the
    entries. Ids are checked first: a bad one raises InvalidId and nothing is written."""
    started = time.perf_counter()
    stamp = int(time.time() * 1000) if as_of_ms is None else int(as_of_ms)
    check_id(rumor_id, "rumor_id")
    for item in item_ids:
        check_id(item, "item_id")
    if lookback_days < 1:
        raise ValueError("lookback_days must be at least 1")
    items = rumor_items(Path(state_dir), rumor_id, item_ids)
    state, stats = compute_backfill(
        Path(logs) if logs is not None else Path(data_dir) / "exposures",
        Path(state_dir), items, rumor_id, run_date_of(now), lookback_days, workers=workers,
    )  # fmt: skip
    client = store.sync_client() if isinstance(store, RedisSettings) else store
    try:
        written = write_live_exposures(client, state, as_of_ms=stamp, ttl_s=lookback_days * DAY_S)
    finally:
        if isinstance(store, RedisSettings):
            client.close()
    return {
        "rumor_id": rumor_id,
        "new_items": list(item_ids),
        "items": len(items),
        "run_date": run_date_of(now).isoformat(),
        "lookback_days": lookback_days,
        "as_of_ms": stamp,
        **stats,
        "write": written.as_dict(),
        "users": written.users,
        "seconds": round(time.perf_counter() - started, 3),
    }
