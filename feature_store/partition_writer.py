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
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from feature_store.models import PairScorer
from feature_store.settings import RedisSettings
from feature_store.snapshots import SnapshotWriter


@dataclass(frozen=True)
class PartitionCounts:
    """What one task wrote: distinct users, pairs, rows skipped for an invalid id, and the
    ``id_hashes`` rows of the users it gave rows (``members``: 16 bytes a user, once per batch
    a user's rows reach; the driver builds the snapshot's member filter from every task's)."""

    users: int = 0
    pairs: int = 0
    skipped_invalid_ids: int = 0
    members: bytes = field(default=b"", repr=False)

    def __add__(self, other: PartitionCounts) -> PartitionCounts:
        return PartitionCounts(
            self.users + other.users,
            self.pairs + other.pairs,
            self.skipped_invalid_ids + other.skipped_invalid_ids,
            self.members + other.members,
        )

    def member_hashes(self) -> np.ndarray:
        """``members`` as the (n, 2) uint64 array ``SnapshotWriter.add_counts`` takes."""
        return member_hashes([self.members])


def member_hashes(parts: Iterable[bytes]) -> np.ndarray:
    """Several tasks' ``members`` bytes as one (n, 2) uint64 array of id hashes."""
    return np.frombuffer(b"".join(parts), dtype="<u8").reshape(-1, 2)


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
    exactly as the driver would write them. The counts carry the partition's users' hashes
    for the driver's member filter."""
    client = settings.sync_client()
    try:
        # One connection a task: the tasks are the parallelism (--write-tasks caps connections).
        writer = SnapshotWriter(client, version, register=False, bulk_connections=1)
        writer.write_exposures(batches, scorer)
        done, hashes = writer.summary, writer.member_hashes()
        if hashes is None:  # a filter without this task's users would miss them: never
            raise RuntimeError("partition writer: its users' hashes were not kept")
        return PartitionCounts(done.users, done.pairs, done.skipped_invalid_ids, hashes.tobytes())
    finally:
        client.close()
