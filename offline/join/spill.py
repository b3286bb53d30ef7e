"""Pair aggregates beyond the memory budget, spilled to disk in user-range partitions.

Each spill is one Arrow IPC file of sorted pair aggregates cut at fixed user_id pivots into
``partitions`` record batches (one per user range, empty ones included), so a partition of every
run is read back without the rest. The pivots are quantiles of the first spill's users. At the
end, neighbouring partitions are grouped up to a byte limit and each group is reduced on its own
(reduce_pairs), giving the pairs in (user_id, rumor_id) order one group at a time: memory holds
about one group, however many pairs the whole state has.
"""

from __future__ import annotations

import bisect
import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from offline.io.tempfiles import temp_path
from offline.join.aggregate import SORT_KEYS, is_sorted, reduce_pairs
from offline.join.contracts import PAIR_SCHEMA

# Fine partitions per spill: neighbours are grouped at the end, so many costs only small batches.
PARTITIONS = 256
_OPTIONS = ipc.IpcWriteOptions(compression="lz4")


class _Users:
    """The non-null user ids of a sorted table as a sequence of str, for bisect."""

    def __init__(self, users: pa.Array) -> None:
        self.users = users

    def __len__(self) -> int:
        return len(self.users) - self.users.null_count

    def __getitem__(self, i: int) -> str:
        return str(self.users[i].as_py())


class SpillRuns:
    """Sorted pair runs under ``folder`` (created here, removed by ``close``), cut into
    ``partitions`` user ranges."""

    def __init__(self, folder: Path, partitions: int = PARTITIONS, *, lazy: bool = False) -> None:
        self.folder = folder
        self.partitions = partitions
        self.pivots: list[str] | None = None
        self.files: list[Path] = []
        self.sizes = np.zeros(0, dtype=np.int64)  # bytes per partition over all runs
        self.rows = 0
        if not lazy:
            folder.mkdir(parents=True, exist_ok=True)

    def __bool__(self) -> bool:
        return bool(self.files)

    def add(self, pairs: pa.Table, *, ordered: bool = False) -> None:
        """Spill ``pairs`` (PAIR_SCHEMA, each pair once) as one more run; ``ordered``: they are
        known to be in (user_id, rumor_id) order (a merge's output), so it is not checked."""
        if not pairs.num_rows:
            return
        if not ordered and not is_sorted(pairs):
            pairs = pairs.sort_by(SORT_KEYS)
        users = pairs["user_id"].combine_chunks()
        if self.pivots is None:
            self.pivots = _pivots(users, self.partitions)
            self.sizes = np.zeros(len(self.pivots) + 1, dtype=np.int64)
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = _Users(users)
        cuts = [0, *(bisect.bisect_left(keys, p) for p in self.pivots), pairs.num_rows]
        path = self.folder / f"run-{len(self.files):05d}.arrow"
        tmp = temp_path(path)
        table = pairs.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA)
        with (
            pa.OSFile(str(tmp), "wb") as sink,
            ipc.new_file(sink, PAIR_SCHEMA, options=_OPTIONS) as out,
        ):
            for p, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
                part = table.slice(lo, hi - lo)
                out.write_batch(_batch(part))
                self.sizes[p] += part.nbytes
        os.replace(tmp, path)
        self.files.append(path)
        self.rows += pairs.num_rows

    def groups(self, limit_bytes: int) -> list[range]:
        """Neighbouring partitions grouped so each group's runs hold at most ``limit_bytes``
        (a single partition above it is a group of its own)."""
        out: list[range] = []
        start, held = 0, 0
        for p, size in enumerate(self.sizes.tolist()):
            if p > start and held + size > limit_bytes:
                out.append(range(start, p))
                start, held = p, 0
            held += size
        if len(self.sizes):
            out.append(range(start, len(self.sizes)))
        return out

    def merged(self, limit_bytes: int) -> Iterator[pa.Table]:
        """Every pair once, in (user_id, rumor_id) order, one reduced group at a time; the next
        group is read and reduced on another thread while the caller writes this one (so two
        groups are in memory at most)."""
        groups = self.groups(limit_bytes)
        if not groups:
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead: Future[pa.Table] = pool.submit(self._reduced, groups[0])
            for group in groups[1:]:
                done = ahead.result()
                ahead = pool.submit(self._reduced, group)
                yield done
                del done
            yield ahead.result()

    def _reduced(self, group: range) -> pa.Table:
        """The partitions of ``group`` from every run, each pair once, in order."""
        tables = []
        for path in self.files:
            with pa.OSFile(str(path)) as source:
                reader = ipc.open_file(source)
                batches = [reader.get_batch(p) for p in group]
                tables.append(pa.Table.from_batches(batches, PAIR_SCHEMA))
        return reduce_pairs(pa.concat_tables(tables))

    def close(self) -> None:
        """Remove the runs and their folder."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.files = []
        self.sizes = np.zeros(0, dtype=np.int64)


def _batch(table: pa.Table) -> pa.RecordBatch:
    """``table`` as one record batch (an empty one keeps the schema)."""
    if not table.num_rows:
        return pa.RecordBatch.from_pylist([], schema=PAIR_SCHEMA)
    return table.combine_chunks().to_batches()[0]


def _pivots(users: pa.Array, partitions: int) -> list[str]:
    """Up to ``partitions - 1`` distinct user ids at even quantiles of sorted ``users``."""
    n = len(users) - users.null_count
    if n == 0 or partitions < 2:
        return []
    at = sorted({int(n * k / partitions) for k in range(1, partitions)} - {0})
    return sorted({str(users[i].as_py()) for i in at})


def spill_folder(work_dir: Path) -> Path:
    """A new spill folder under ``work_dir`` named for this process, so a sweep of stale temps
    (offline.io.tempfiles) removes the one a killed run left."""
    return work_dir / f".spill-{uuid.uuid4().hex[:8]}.tmp-{os.getpid()}"
