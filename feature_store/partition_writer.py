"""One slice of a snapshot's exposures written from any process: a Spark executor task, a worker.

The driver of a distributed write registers the version (``SnapshotWriter``: the WRITING
record, its heartbeat), hands each task some users' exposure rows, sums the counts the tasks
return and commits once. A task writes with the same key layout and codec as the driver's own
``SnapshotWriter.write_exposures`` (it runs that code), on one connection: the RESP bulk path on
a single Redis, redis-py's cluster pipeline (slot routing) on a Redis Cluster. HSETs are
idempotent, so a retried task rewrites the same fields with the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from feature_store.models import PairScorer
from feature_store.settings import RedisSettings
from feature_store.snapshots import SnapshotWriter


@dataclass(frozen=True)
class PartitionCounts:
    """What one task wrote: distinct users, pairs, and rows skipped for an invalid id."""

    users: int = 0
    pairs: int = 0
    skipped_invalid_ids: int = 0

    def __add__(self, other: PartitionCounts) -> PartitionCounts:
        return PartitionCounts(
            self.users + other.users,
            self.pairs + other.pairs,
            self.skipped_invalid_ids + other.skipped_invalid_ids,
        )


def write_partition(
    settings: RedisSettings,
    version: str,
    batches: Iterable[pa.RecordBatch],
    scorer: PairScorer | None = None,
) -> PartitionCounts:
    """Write the exposure-state rows of ``batches`` into snapshot ``version`` at ``settings``.

    The rows must be sorted by user, and every row of a user must be in this call (so that
    ``users`` counts each user once over all tasks); the version must have been registered by
    its driver, which commits it. With a ``scorer``, values carry the ranker's logits (codec 2)
    exactly as the driver would write them."""
    client = settings.sync_client()
    try:
        # One connection a task: the tasks are the parallelism (--write-tasks caps connections).
        writer = SnapshotWriter(client, version, register=False, bulk_connections=1)
        writer.write_exposures(batches, scorer)
        done = writer.summary
        return PartitionCounts(done.users, done.pairs, done.skipped_invalid_ids)
    finally:
        client.close()
