"""Materialization: exposure state and the debunk catalog into a new snapshot version in Redis."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import redis

from feature_store.records import Debunk, Rumor
from feature_store.snapshots import SnapshotWriter, WriteSummary


def materialize(
    client: redis.Redis,
    state: Path,
    rumors: list[Rumor],
    debunks: list[Debunk],
    *,
    meta: dict[str, str] | None = None,
    version: str | None = None,
    keep: int = 2,
    batch_rows: int = 200_000,
) -> WriteSummary:
    """Write a complete snapshot from an exposure-state Parquet file, then flip to it."""
    writer = SnapshotWriter(client, version)
    writer.write_catalog(rumors, debunks)
    writer.write_exposures(pq.ParquetFile(state).iter_batches(batch_size=batch_rows))
    return writer.commit(meta, keep=keep)
