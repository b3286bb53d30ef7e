"""Materialization from Spark executors: the exposure state's users are spread over tasks and
each task writes its users' hashes into Redis itself (feature_store.partition_writer); the
driver registered the version, keeps its heartbeat while the tasks run, sums the counts they
return and commits once (offline.nightly.materialize). Each task also returns its users' id
hashes (16 bytes a user, computed as it writes them), from which the driver builds the
snapshot's member filter exactly as a driver-side write does. A failed job records the write as
abandoned, so the current version keeps serving and the next run's GC removes the partial one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from feature_store.models import PairScorer
from feature_store.partition_writer import PartitionCounts, member_hashes, write_partition
from feature_store.settings import RedisSettings
from feature_store.snapshots import SnapshotWriter
from offline.join.engine import JoinEngine

if TYPE_CHECKING:
    from offline.join.spark_engine import SparkEngine

_COUNTS = pa.schema(
    [("users", pa.int64()), ("pairs", pa.int64()), ("skipped_invalid_ids", pa.int64()),
     ("members", pa.binary())]
)  # fmt: skip

_SPARK_COUNTS = "users long, pairs long, skipped_invalid_ids long, members binary"


class ExecutorExposures:
    """Writes a night's exposures from the Spark ``engine``'s executors into ``settings``'s
    Redis, in ``tasks`` tasks (default: the session's parallelism), one connection each: so
    ``tasks`` also caps the connections the write opens at once."""

    def __init__(
        self, engine: JoinEngine, settings: RedisSettings, *, tasks: int | None = None
    ) -> None:
        if engine.name != "spark":
            raise ValueError(
                f"materializing from executors needs --engine spark, not {engine.name!r}"
            )
        if tasks is not None and tasks < 1:
            raise ValueError("the executor write needs at least one task")
        self.engine: SparkEngine = engine  # type: ignore[assignment]  # checked by name above
        self.settings = settings
        self.tasks = tasks

    def __call__(self, writer: SnapshotWriter, state: Path, scorer: PairScorer | None) -> None:
        """Write the exposure state Parquet file ``state`` into ``writer``'s version and add
        the tasks' counts and users (for its member filter) to its summary; on failure,
        abandon the write and raise."""
        try:
            with writer.beating():
                counts, hashes = self._run(writer.version, state, scorer)
        except BaseException:
            writer.abandon()
            raise
        writer.add_counts(counts.users, counts.pairs, counts.skipped_invalid_ids, members=hashes)

    def _run(
        self, version: str, state: Path, scorer: PairScorer | None
    ) -> tuple[PartitionCounts, np.ndarray]:
        """Run the write job; the tasks' summed counts and their users' id hashes."""
        from offline.join.spark_engine import from_arrow, to_arrow

        session = self.engine.session
        context = session.sparkContext
        tasks = self.tasks or context.defaultParallelism
        # Every row of a user in one task, in (user, rumor) order: the driver's order.
        frame = (
            from_arrow(session, pq.read_table(state))
            .repartition(tasks, "user_id")
            .sortWithinPartitions("user_id", "rumor_id")
        )
        shipped = context.broadcast(scorer) if scorer is not None else None
        settings = self.settings

        def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            done = write_partition(
                settings, version, batches, shipped.value if shipped is not None else None
            )
            yield pa.RecordBatch.from_pylist([asdict(done)], schema=_COUNTS)

        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=FutureWarning)  # pyspark on pandas 3
                written = frame.mapInArrow(task, _SPARK_COUNTS)
            rows = to_arrow(written)
        finally:
            if shipped is not None:
                shipped.unpersist()
        total = PartitionCounts(*(pc.sum(rows[name]).as_py() or 0 for name in _COUNTS.names[:3]))
        return total, member_hashes(rows["members"].to_pylist())
