"""Confirmation backfill: a new tag's audience over the lookback window, straight into the live
exposure state, in minutes rather than at the next nightly.

For one rumor, each partition of the window that the current state generation holds unchanged
gives its stored pair aggregates of the rumor, and only the new items are read there; other
partitions are read for every item of the rumor. The item index (offline.nightly.item_index)
names the row groups that can hold those items; only they are read, through the local engine's
own scan (validation, prefilter, exact join, aggregation), and the per-user states are merged
exactly as the nightly merges them (offline.join.aggregate). They are written under
``dbk:lx:{user}`` with an as-of stamp taken before the tags were read
(feature_store.live_exposures), so the service prefers them to a snapshot whose nightly read its
tags earlier, and drops them once a later nightly folded the tag in (domain.exposure_layers).
A partition without a current index is read whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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
from offline.join.contracts import (
    SURFACE_COUNT_SCHEMA,
    JoinSummary,
    Partial,
    prepare_tags,
    with_tag_score,
)
from offline.join.local import LocalEngine, scan_files
from offline.nightly.item_index import index_path, lookup
from offline.nightly.manifest import Manifest
from offline.nightly.state import applied_tags, window


def run_date_of(now: datetime | date | float) -> date:
    """The UTC day whose window a backfill at ``now`` covers (as the nightly of that day)."""
    if isinstance(now, datetime):
        return now.astimezone(UTC).date() if now.tzinfo else now.date()
    if isinstance(now, date):
        return now
    return datetime.fromtimestamp(float(now), UTC).date()


def applied_items(state_dir: Path, rumor_id: str) -> tuple[Manifest, dict[str, float]]:
    """The current state generation's manifest and the items it attributes to ``rumor_id``
    with their tag scores (from the tag set its partition aggregates were built with)."""
    manifest = Manifest.load(state_dir / "current" / "manifest.json")
    if not manifest.tags_file or not (state_dir / manifest.tags_file).exists():
        return manifest, {}
    tags = applied_tags(state_dir / manifest.tags_file)
    mine = tags.filter(pc.equal(tags["rumor_id"], rumor_id))
    scores = zip(mine["item_id"].to_pylist(), mine["tag_score"].to_pylist(), strict=True)
    return manifest, dict(sorted(scores))


def plan_reads(
    logs: Path, state_dir: Path, dt: str, items: Sequence[str], stats: dict[str, Any]
) -> dict[str, list[int]]:
    """File path -> the row groups of partition ``dt`` that can hold ``items`` (every row group
    when the partition has no current index), counted into ``stats``."""
    files = logfiles.partition_files(logs, dt)
    counts = {str(f): pq.ParquetFile(f).metadata.num_row_groups for f in files}
    stats["row_groups_total"] += sum(counts.values())
    path = index_path(state_dir, dt, LocalEngine().fingerprint(files))
    if not path.exists():
        stats["unindexed"].append(dt)
        groups = {f: list(range(n)) for f, n in counts.items()}
    else:
        stats["indexed"] += 1
        groups = {str(logs / f"dt={dt}" / n): rgs for n, rgs in lookup(path, items).items()}
    stats["row_groups_read"] += sum(len(g) for g in groups.values())
    return groups


def _scan(groups: dict[str, list[int]], items: dict[str, float], rumor_id: str,
          summary: JoinSummary, workers: int) -> Partial:  # fmt: skip
    """The pair aggregates of ``items`` (item -> tag score, all carrying ``rumor_id``) in the
    named row groups."""
    if not groups or not items:
        return Partial.empty()
    tags = prepare_tags(
        pa.table({"item_id": list(items), "rumor_id": [rumor_id] * len(items),
                  "score": list(items.values())})
    )  # fmt: skip
    checked = logfiles.check_files([Path(f) for f in sorted(groups)])
    return scan_files(checked, tags, summary, row_groups=groups, workers=workers)


def compute_backfill(
    logs: Path,
    state_dir: Path,
    new_items: Sequence[str],
    rumor_id: str,
    run_date: date,
    lookback_days: int,
    *,
    workers: int = 2,
) -> tuple[pa.Table, dict[str, Any]]:
    """The per-user exposure states (STATE_SCHEMA) of ``rumor_id`` over the window ending
    ``run_date`` once ``new_items`` carry it too, and the read's statistics; nothing is written.

    A partition the current state generation holds unchanged gives its stored pair aggregates
    of the rumor (the items it already carried), and only the new items are scanned there; a
    partition it does not hold (new, late, rewritten) is scanned for every item of the rumor.
    Aggregates merge by sum, min, max and or, so this is what the nightly computes. The new
    items are hand tags (``tag add``, a review accept): tag score 1.0; the applied ones keep the
    score the state was built with."""
    started = time.perf_counter()
    manifest, applied = applied_items(state_dir, rumor_id)
    # a tag already applied is never counted twice
    new = {i: 1.0 for i in sorted(set(new_items) - set(applied))}
    every = {**applied, **new}
    dts = window(run_date, lookback_days, logfiles.partitions(logs))
    stats: dict[str, Any] = {"partitions": len(dts), "indexed": 0, "unindexed": [],
                             "row_groups_total": 0, "row_groups_read": 0, "reused": 0}  # fmt: skip
    partials, only_new, whole = [], {}, {}
    for dt in dts:
        files = logfiles.partition_files(logs, dt)
        entry = manifest.partitions.get(dt)
        if entry is not None and entry.fingerprint == LocalEngine().fingerprint(files):
            stats["reused"] += 1
            partials += [_stored(state_dir / rel, rumor_id) for rel in entry.pairs]
            only_new.update(plan_reads(logs, state_dir, dt, list(new), stats))
        else:
            whole.update(plan_reads(logs, state_dir, dt, sorted(every), stats))
    planned = time.perf_counter()
    summary = JoinSummary(partitions=len(dts))
    partials.append(_scan(only_new, new, rumor_id, summary, workers))
    partials.append(_scan(whole, every, rumor_id, summary, workers))
    state = LocalEngine().merge_state(partials, {rumor_id}).exposures
    stats.update(
        window=[dts[0], dts[-1]] if dts else [],
        items=len(every),
        new_items=len(new),
        files_read=len(only_new) + len(whole),
        rows_read=summary.rows_read,
        rows_kept=summary.rows_kept,
        lookup_s=round(planned - started, 3),
        scan_s=round(time.perf_counter() - planned, 3),
    )
    return state, stats


def _stored(path: Path, rumor_id: str) -> Partial:
    """The stored pair aggregates of one partition, only ``rumor_id``'s rows."""
    pairs = pq.read_table(path, filters=pc.field("rumor_id") == rumor_id)
    return Partial(with_tag_score(pairs), SURFACE_COUNT_SCHEMA.empty_table())


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
    on_states: Callable[[pa.Table], None] | None = None,
) -> dict[str, Any]:
    """Backfill the audience of ``rumor_id`` once ``item_ids`` carry it (call it after the tags
    are in the tags input) into the live exposure state; returns a summary.

    The window is the ``lookback_days`` partitions of ``data_dir/exposures`` (or ``logs``)
    ending on ``now``'s UTC day, as the nightly of that day reads them; the states cover every
    item the rumor carries (rumor_items), so they equal that nightly's. ``store`` is a Redis
    client or settings; ``as_of_ms`` (default: now, taken before the tags are read) stamps the
    entries; ``on_states`` gets the computed states once they are written (e.g. for the
    spreaders' notifications). Ids are checked first: a bad one raises InvalidId and nothing
    is written."""
    started = time.perf_counter()
    stamp = int(time.time() * 1000) if as_of_ms is None else int(as_of_ms)
    check_id(rumor_id, "rumor_id")
    for item in item_ids:
        check_id(item, "item_id")
    if lookback_days < 1:
        raise ValueError("lookback_days must be at least 1")
    state, stats = compute_backfill(
        Path(logs) if logs is not None else Path(data_dir) / "exposures",
        Path(state_dir), item_ids, rumor_id, run_date_of(now), lookback_days, workers=workers,
    )  # fmt: skip
    client = store.sync_client() if isinstance(store, RedisSettings) else store
    try:
        written = write_live_exposures(client, state, as_of_ms=stamp, ttl_s=lookback_days * DAY_S)
    finally:
        if isinstance(store, RedisSettings):
            client.close()
    if on_states is not None:
        on_states(state)
    return {
        "rumor_id": rumor_id,
        "tagged": list(item_ids),
        "run_date": run_date_of(now).isoformat(),
        "lookback_days": lookback_days,
        "as_of_ms": stamp,
        **stats,
        "write": written.as_dict(),
        "users": written.users,
        "seconds": round(time.perf_counter() - started, 3),
    }
