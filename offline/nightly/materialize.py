"""Materialization: exposure state and the debunk catalog into a new snapshot version in Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import redis

from domain.models import OPTION_SLOTS
from domain.records import Catalog, Debunk, Rumor
from feature_store.models import PairScorer
from feature_store.snapshots import SnapshotWriter, WriteSummary
from offline.models.train import TrainedModels
from offline.progress import RowProgress

# Writes the exposure state file into the writer's version some other way than the driver's
# own pipeline (offline.nightly.executor_writer: from Spark executors), adding its counts.
ExposureWrite = Callable[[SnapshotWriter, Path, PairScorer | None], None]


def used_memory(client: redis.Redis) -> int:
    """Bytes Redis uses now, summed over the primaries of a cluster."""
    info = client.info("memory")
    if isinstance(info, dict) and "used_memory" in info:
        return int(info["used_memory"])
    return sum(int(v["used_memory"]) for v in info.values() if isinstance(v, dict))


def materialize(
    client: redis.Redis,
    state: Path,
    rumors: list[Rumor],
    debunks: list[Debunk],
    *,
    item_rumors: dict[str, list[str]] | None = None,
    item_scores: dict[str, dict[str, float]] | None = None,
    meta: dict[str, str] | None = None,
    version: str | None = None,
    keep: int = 2,
    batch_rows: int = 250_000,
    models: TrainedModels | None = None,
    exposures: ExposureWrite | None = None,
) -> WriteSummary:
    """Write a complete snapshot from an exposure-state Parquet file (and the night's models,
    versioned with it), then flip to it. The exposures are written by this process, or by
    ``exposures`` (e.g. Spark executors) when given; the flip is this process's either way."""
    source = pq.ParquetFile(state)
    before = used_memory(client)
    writer = SnapshotWriter(client, version)
    writer.write_catalog(rumors, debunks)
    writer.write_items(item_rumors or {}, item_scores)
    scorer = _scorer(models, rumors, debunks)
    if exposures is not None:
        exposures(writer, state, scorer)
    else:
        with RowProgress(source.metadata.num_rows, f"materialize {writer.version}") as progress:
            writer.write_exposures(_batches(source, batch_rows, progress), scorer)
    if models is not None:
        writer.write_models(models.feed, models.user_factors, models.prebunks, scorer)
    written = used_memory(client) - before
    writer.summary.redis_bytes = written
    summary = writer.commit(meta, keep=keep)
    return summary


def _scorer(
    models: TrainedModels | None, rumors: list[Rumor], debunks: list[Debunk]
) -> PairScorer | None:
    """Precomputes the ranker's option logits of every exposed pair, when there is a ranker:
    serving then needs no matrix product for a user's exposed rumors."""
    if models is None or models.feed is None:
        return None
    by_rumor = Catalog.build(rumors, debunks).debunks_by_rumor
    options = {rid: [d.debunk_id for d in ds] for rid, ds in by_rumor.items()}
    return PairScorer(models.feed, models.user_factors, options, slots=OPTION_SLOTS)


def _batches(source: pq.ParquetFile, rows: int, progress: RowProgress) -> Iterator[pa.RecordBatch]:
    for batch in source.iter_batches(batch_size=rows):
        yield batch
        progress.advance(batch.num_rows)
