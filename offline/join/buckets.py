"""A scan's pair aggregates held in user-range buckets, each reduced once on its own.

The joined partials are cut at fixed user pivots (8-byte id prefixes, quantiles of the first
candidates' users) into buckets as they arrive (the C aggregation emits them in bucket order,
so a cut is zero-copy slices), so every user's pairs lie in one bucket and the buckets in order
are the users in order. Past the budget the oldest held partials are spilled as they are (Arrow
IPC, lz4, each piece to its bucket's file) and the rest stay held: each pair row is written at
most once and each bucket is reduced alone at the end (reduce_pairs), with no multi-way merge.
A bucket that outgrew the fold's limit goes through SpillRuns' sorted runs.
"""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from offline.join.aggregate import _pairsort, reduce_pairs
from offline.join.contracts import PAIR_SCHEMA, Partial
from offline.join.spill import SpillRuns

# Buckets per scan: enough that a scan of ~40M pairs (400M log rows at 10%) keeps every bucket
# under the fold's limit (no sorted-runs pass); neighbours are grouped before they are reduced.
BUCKETS = 128
# A scan that never spilled reduces its buckets in about this many groups (the pool's tasks).
HELD_GROUPS = 16
_OPTIONS = ipc.IpcWriteOptions(compression="lz4")
# (bucket, its rows) pieces of one partial's pairs, cut in a pool task and held after.
Pieces = list[tuple[int, pa.Table]]
_NULL_PREFIX = np.iinfo(np.uint64).max  # null user ids sort last, as Arrow's sort puts them


def user_prefixes(users: pa.Array | pa.ChunkedArray, at: np.ndarray | None = None) -> np.ndarray:
    """Each id's first 8 bytes as a big-endian uint64 (zero-padded): the prefixes are in the
    ids' byte order (equal ones are ids that share them), nulls the largest; with ``at``, of
    the ids at those rows only."""
    if isinstance(users, pa.ChunkedArray):
        users = users.combine_chunks()
    users = users.cast(pa.string())
    n = len(users) if at is None else len(at)
    out = np.zeros(n, dtype=np.uint64)
    if n == 0:
        return out
    _, offsets_buf, data_buf = users.buffers()
    if _pairsort is not None:  # one C pass
        rows = None if at is None else np.ascontiguousarray(at, dtype=np.int64)
        data_bytes = b"" if data_buf is None else data_buf
        _pairsort.prefixes(offsets_buf, users.offset, len(users), data_bytes, rows, out)
    else:
        _gathered_prefixes(offsets_buf, data_buf, users, at, out)
    if users.null_count:
        null = ~users.is_valid().to_numpy(zero_copy_only=False)
        out[null if at is None else null[at]] = _NULL_PREFIX
    return out


def _gathered_prefixes(
    offsets_buf: pa.Buffer,
    data_buf: pa.Buffer | None,
    users: pa.Array,
    at: np.ndarray | None,
    out: np.ndarray,
) -> None:
    """user_prefixes without the C extension: numpy gathers into ``out``."""
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[
        users.offset : users.offset + len(users) + 1
    ]
    data = np.zeros(0, np.uint8) if data_buf is None else np.frombuffer(data_buf, dtype=np.uint8)
    if at is None:
        starts, lengths = offsets[:-1].astype(np.int64), np.diff(offsets)
    else:
        starts = offsets[at].astype(np.int64)
        lengths = offsets[at + 1] - offsets[at]
    # One gather of 8 bytes an id (the data padded so no read runs past it), bytes past an id's
    # end zeroed, read as big-endian words.
    padded = np.concatenate([data, np.zeros(8, np.uint8)])
    k = np.arange(8, dtype=np.int64)
    window = padded[starts[:, None] + k]
    window[k >= lengths[:, None]] = 0
    out[:] = window.view(">u8").ravel()


def bucket_of(
    users: pa.Array | pa.ChunkedArray, pivots: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Each id's bucket (of the ids at rows ``at``): how many ``pivots`` its prefix is at or
    past."""
    return np.searchsorted(pivots, user_prefixes(users, at), side="right")


@dataclass
class BucketedPartial(Partial):
    """A partial whose pairs are in bucket order: bucket b's rows end at ``ends[b]``."""

    ends: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class UserBuckets:
    """Pair aggregates (PAIR_SCHEMA, unreduced) in user-range buckets: held tables, and what
    was spilled of each under ``folder`` (created on the first spill, removed by ``close``)."""

    def __init__(self, pivots: np.ndarray, folder: Path) -> None:
        self.pivots = pivots
        self.folder = folder
        count = len(pivots) + 1
        self.tables: list[list[pa.Table]] = [[] for _ in range(count)]
        self.held_bytes = np.zeros(count, dtype=np.int64)
        self.spilled_bytes = np.zeros(count, dtype=np.int64)
        self.spilled_rows = 0  # pair rows written, each once
        self.overflowed_rows = 0  # of them, spilled before the end of the scan
        self._partials: deque[list[int]] = deque()  # each held partial's buckets, oldest first
        self._writers: dict[int, tuple[pa.NativeFile, ipc.RecordBatchStreamWriter]] = {}
        self._files: dict[int, Path] = {}
        self.group_bytes: int | None = None  # the groups merged() reduces, when set by finish

    @classmethod
    def around(cls, users: pa.ChunkedArray, folder: Path, count: int = BUCKETS) -> UserBuckets:
        """Buckets cut at even quantiles of ``users``' distinct prefixes."""
        prefixes = np.unique(user_prefixes(users))
        prefixes = prefixes[prefixes != _NULL_PREFIX]
        at = sorted({len(prefixes) * k // count for k in range(1, count)} - {0})
        return cls(np.unique(prefixes[at]) if len(prefixes) else prefixes, folder)

    def __bool__(self) -> bool:
        """Whether anything was spilled."""
        return bool(self._files)

    @property
    def files(self) -> list[Path]:
        """The spilled buckets' files, in bucket order."""
        return [self._files[b] for b in sorted(self._files)]

    @property
    def held(self) -> int:
        """Bytes of pairs held in memory."""
        return int(self.held_bytes.sum())

    def cut(self, pairs: pa.Table, ends: np.ndarray | None = None) -> Pieces:
        """``pairs`` cut into (bucket, its rows) pieces, each a table of its own (so spilling
        one frees it; with the ``ends`` of pairs in bucket order, zero-copy slices); reads the
        pivots only, so a pool task can cut while others run."""
        if not pairs.num_rows:
            return []
        pairs = pairs.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA)
        order = None
        if ends is None:
            bucket = bucket_of(pairs["user_id"], self.pivots)
            ends = np.cumsum(np.bincount(bucket, minlength=len(self.tables)))
            order = np.argsort(bucket, kind="stable")
        pieces, start = [], 0
        for b, end in enumerate(ends.tolist()):
            if end > start:
                piece = (
                    pairs.slice(start, end - start)
                    if order is None
                    else pairs.take(pa.array(order[start:end]))
                )
                pieces.append((b, piece))
            start = end
        return pieces

    def put(self, pieces: Pieces) -> None:
        """Hold the pieces ``cut`` gave (one partial's)."""
        for b, table in pieces:
            self.tables[b].append(table)
            self.held_bytes[b] += table.nbytes
        self._partials.append([b for b, _ in pieces])

    def add(self, pairs: pa.Table) -> None:
        """``pairs`` cut into the buckets and held."""
        self.put(self.cut(pairs))

    def spill_oldest(self, until: int) -> None:
        """Spill the oldest held partials (each piece to its bucket's file, so the partial's
        buffers are let go) until at most ``until`` bytes are held."""
        while self._partials and self.held > until:
            for b in self._partials.popleft():
                self._write(b, self.tables[b].pop(0))
        self.overflowed_rows = self.spilled_rows

    def finish(self, group_bytes: int | None = None) -> None:
        """The end of a scan handed over unreduced: its files closed, the held pieces kept
        (read with the spilled ones, each let go once its group is reduced: no write and read
        back); with ``group_bytes``, merged() reduces groups of at most that many bytes."""
        self._partials.clear()
        self._close_writers()
        self.group_bytes = group_bytes

    def _write(self, b: int, table: pa.Table) -> None:
        if b not in self._writers:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"bucket-{b:03d}.arrow"
            sink = pa.OSFile(str(path), "wb")
            self._writers[b] = (sink, ipc.new_stream(sink, PAIR_SCHEMA, options=_OPTIONS))
            self._files[b] = path
        self._writers[b][1].write_table(table)
        self.spilled_rows += table.num_rows
        self.spilled_bytes[b] += table.nbytes
        self.held_bytes[b] -= table.nbytes

    def _close_writers(self) -> None:
        for sink, writer in self._writers.values():
            writer.close()
            sink.close()
        self._writers = {}

    def reduced(self, pool: ThreadPoolExecutor) -> pa.Table:
        """Every held pair once, in (user_id, rumor_id) order (nothing spilled): the buckets
        reduced in the pool, their tables let go as they are handed over."""
        tasks = []
        for group in self.groups(max(1, self.held // HELD_GROUPS)):
            tables = [t for b in group for t in self.tables[b]]
            if tables:
                tasks.append(pool.submit(_reduce_tables, tables))
            for b in group:
                self.tables[b], self.held_bytes[b] = [], 0
            del tables
        self._partials.clear()
        tables = [t.result() for t in tasks]
        return pa.concat_tables(tables) if tables else PAIR_SCHEMA.empty_table()

    def groups(self, limit: int) -> list[range]:
        """Neighbouring buckets grouped so each group holds at most ``limit`` bytes (a bucket
        above it is a group of its own)."""
        sizes = (self.held_bytes + self.spilled_bytes).tolist()
        out: list[range] = []
        start, held = 0, 0
        for b, size in enumerate(sizes):
            if b > start and held + size > limit:
                out.append(range(start, b))
                start, held = b, 0
            held += size
        out.append(range(start, len(sizes)))
        return out

    def merged(
        self,
        limit: int,
        workers: int = 2,
        finish: Callable[[pa.Table], pa.Table] | None = None,
        pool: Executor | None = None,
    ) -> Iterator[pa.Table]:
        """Every pair once, in (user_id, rumor_id) order, one reduced group at a time: groups
        of up to ``limit / workers`` bytes (or finish's ``group_bytes``, if smaller), read and
        reduced on ``workers`` threads (of ``pool``, when given: the caller's, which it may
        share with its writer) while the caller writes the ones before, as many ahead as hold
        ``limit`` bytes (at least ``workers`` + 1); a bucket over ``limit`` streams through
        sorted runs of its own. ``finish`` is applied to each group where it was reduced."""
        self._close_writers()
        workers = max(1, workers)
        if pool is not None:
            yield from self._merged(limit, workers, finish or _same, pool)
            return
        with ThreadPoolExecutor(max_workers=workers) as own:
            yield from self._merged(limit, workers, finish or _same, own)

    def _merged(
        self, limit: int, workers: int, then: Callable[[pa.Table], pa.Table], pool: Executor
    ) -> Iterator[pa.Table]:
        sizes = (self.held_bytes + self.spilled_bytes).tolist()
        size = max(1, limit // workers)
        ahead: deque[tuple[Future[pa.Table], int]] = deque()
        pending = 0  # bytes of the groups ahead
        for group in self.groups(min(size, self.group_bytes or size)):
            if len(group) == 1 and sizes[group[0]] > limit:
                while ahead:
                    yield ahead.popleft()[0].result()
                pending = 0
                yield from map(then, self._oversized(group[0], limit))
                continue
            held = sum(sizes[b] for b in group)
            ahead.append((pool.submit(lambda g=group: then(self._reduced(g))), held))
            pending += held
            while len(ahead) > workers and pending > limit:
                done, held = ahead.popleft()
                pending -= held
                yield done.result()
        while ahead:
            yield ahead.popleft()[0].result()

    def _pieces(self, b: int) -> Iterator[pa.Table]:
        """Bucket ``b``'s tables: the held ones (let go here), then the spilled ones batch by
        batch."""
        held, self.tables[b] = self.tables[b], []
        self.held_bytes[b] = 0
        while held:
            yield held.pop(0)
        path = self._files.get(b)
        if path is not None:
            with pa.OSFile(str(path)) as source:
                for batch in ipc.open_stream(source):
                    yield pa.Table.from_batches([batch], PAIR_SCHEMA)

    def _reduced(self, group: range) -> pa.Table:
        tables = [t for b in group for t in self._pieces(b)]
        return _reduce_tables(tables) if tables else PAIR_SCHEMA.empty_table()

    def _oversized(self, b: int, limit: int) -> Iterator[pa.Table]:
        """A bucket over the limit: reduced in pieces of half of it into sorted runs, which are
        then merged range by range."""
        runs = SpillRuns(self.folder / f"bucket-{b:03d}.runs", lazy=True)
        try:
            chunk: list[pa.Table] = []
            held = 0
            for table in self._pieces(b):
                chunk.append(table)
                held += table.nbytes
                if held > limit // 2:
                    runs.add(_reduce_tables(chunk), ordered=True)
                    chunk, held = [], 0
            if chunk:
                runs.add(_reduce_tables(chunk), ordered=True)
            yield from runs.merged(limit)
        finally:
            runs.close()

    def close(self) -> None:
        """Drop the held pairs and remove the spill."""
        self._close_writers()
        self.tables = [[] for _ in self.tables]
        self.held_bytes[:] = 0
        self._partials.clear()
        self._files = {}
        shutil.rmtree(self.folder, ignore_errors=True)


def _same(table: pa.Table) -> pa.Table:
    return table


def _reduce_tables(tables: list[pa.Table]) -> pa.Table:
    return reduce_pairs(pa.concat_tables(tables))
