"""The local join engine: exposure logs streamed with pyarrow in bounded memory.

Logs are scanned batch by batch with column projection; the id prefilter (with its C scan)
drops most rows on untagged items, an exact lookup joins the rest to their rumors, and they are
aggregated at once; the pairs are cut into user-range buckets as they come (offline.join.buckets)
and each bucket is reduced once at the end. The pairs held in memory are bounded by
``memory_mb``: beyond it the largest buckets are spilled under ``work_dir`` and the state is read
back one group of buckets at a time (offline.join.fold), so memory follows the batches.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from offline.join.aggregate import merge_surfaces
from offline.join.buckets import HELD_GROUPS, BucketedPartial, Pieces, UserBuckets
from offline.join.contracts import PAIR_SCHEMA, ExposureState, JoinSummary, Partial, RejectSink
from offline.join.engine import JoinEngine
from offline.join.fold import SpilledPartial, StreamedState, fold
from offline.join.footers import footer
from offline.join.screen import BatchResult, screen_file
from offline.join.spill import spill_folder
from offline.join.tag_index import TagIndex, join_candidates, join_known

# Join the screened candidate rows once this many are buffered: the exact lookup builds its hash
# set of the tagged ids once per call, so calls on few rows would spend most time building it.
_JOIN_ROWS = 1 << 18
# The default budget for the pair aggregates held in memory (scan buffers come on top).
DEFAULT_MEMORY_MB = 256
# Of the budget, what the held pairs may take before a spill: a merge holds its inputs, the
# sort keys and its output at once, and new partials keep arriving while it runs.
_HELD_SHARE = 6
# A scan's own pairs may take a third (decision 0063): the nightly's day scans peak over 100 MB
# under its fold (the window merge and the output write keep the sixth). Past it the largest user
# buckets are spilled down to a sixth, and a spilled scan is read back in groups of a sixth
# (decision 0067: no merge runs during the scan, so it holds no more after a spill).
_SCAN_SHARE = 3


class LocalEngine(JoinEngine):
    """Streams Parquet with pyarrow on a pool of ``workers`` threads, ``batch_size`` rows at a
    time. Batches of up to 1M rows (a whole row group of the nightly files) measured ~5% faster
    than 256k ones, for ~40 MB more peak RSS: fewer per-batch calls, and the reader decodes each
    column chunk in one go."""

    name = "local"

    def __init__(
        self,
        *,
        batch_size: int = 1 << 20,
        workers: int = 2,
        memory_mb: float | None = DEFAULT_MEMORY_MB,
        work_dir: Path | str | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.workers = workers
        self.write_threads = max(1, workers)
        self.memory_mb = memory_mb
        self.work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.gettempdir())
        self._work_dir_given = work_dir is not None

    def spill_under(self, folder: Path) -> None:
        """Spill under ``folder`` unless a work_dir was given."""
        if not self._work_dir_given:
            self.work_dir = Path(folder)

    @property
    def spill_limit(self) -> int | None:
        """Bytes of pair aggregates held in memory before a spill (None: never spill)."""
        if self.memory_mb is None:
            return None
        return max(1, int(self.memory_mb * (1 << 20)) // _HELD_SHARE)

    @property
    def scan_limit(self) -> int | None:
        """Bytes of pair aggregates a scan holds before it spills (None: never spill)."""
        if self.memory_mb is None:
            return None
        return max(1, int(self.memory_mb * (1 << 20)) // _SCAN_SHARE)

    def scan_checked(
        self,
        files: list[tuple[str, bool]],
        tags: pa.Table,
        summary: JoinSummary,
        *,
        sink: RejectSink | None = None,
        on_batch: Callable[[int], None] | None = None,
        before: datetime | None = None,
    ) -> Partial:
        return scan_files(
            files, tags, summary, sink=sink, on_batch=on_batch,
            batch_size=self.batch_size, workers=self.workers, before=before,
            spill_limit=self.scan_limit, work_dir=self.work_dir, merge_limit=self.spill_limit,
        )  # fmt: skip

    def scan_state(
        self,
        files: Sequence[Path | str],
        tags: pa.Table,
        summary: JoinSummary,
        *,
        sink: RejectSink | None = None,
    ) -> StreamedState:
        """The scan's state streamed: its buckets are handed over unreduced even when nothing
        spilled, so each group is reduced (and finished) on the pool's two threads while the
        caller writes the one before, instead of every bucket being reduced before the first
        row is written (the chunks are the same)."""
        partial = scan_files(
            self.checked_files(files, summary), tags, summary, sink=sink,
            batch_size=self.batch_size, workers=self.workers, spill_limit=self.scan_limit,
            work_dir=self.work_dir, merge_limit=self.spill_limit, lazy=True,
        )  # fmt: skip
        return self.merge_stream([partial])

    def merge_state(
        self, partials: Iterable[Partial], confirmed: set[str] | None = None
    ) -> ExposureState:
        """Folds the partials one by one (see merge_stream) into one in-memory table."""
        with self.merge_stream(partials, confirmed) as state:
            return state.table()

    def merge_stream(
        self, partials: Iterable[Partial], confirmed: set[str] | None = None
    ) -> StreamedState:
        """The state in (user, rumor) order chunk by chunk, the held pairs bounded by the
        budget (offline.join.fold); a single partial holds each pair once already."""
        return fold(partials, confirmed, limit=self.spill_limit, work_dir=self.work_dir)


def scan_files(
    files: list[tuple[str, bool]],
    tags: pa.Table,
    summary: JoinSummary,
    *,
    sink: RejectSink | None = None,
    on_batch: Callable[[int], None] | None = None,
    batch_size: int = 1 << 20,
    workers: int = 2,
    row_groups: dict[str, list[int]] | None = None,
    before: datetime | None = None,
    spill_limit: int | None = None,
    work_dir: Path | None = None,
    merge_limit: int | None = None,
    lazy: bool = False,
) -> Partial:
    """Aggregate the rows of checked ``files`` (path, ts is text) on tagged items (``tags``
    from prepare_tags); with ``row_groups``, only the row groups it lists for each path (a
    backfill reads what the item index names); with ``before``, valid rows before it only.

    Tasks share a pool of ``workers`` threads (Arrow kernels and numpy release the GIL): each
    file is decoded and screened batch by batch by one worker (validation, prefilter); the
    candidates of many batches are then joined exactly, aggregated and cut into user buckets in
    one task. At most ``2 * workers`` file tasks and ``workers`` join tasks are in flight, so
    memory stays flat. With ``spill_limit``, held pairs beyond that many bytes are spilled (the
    largest buckets) under ``work_dir`` and a SpilledPartial is returned (its spill is removed
    here if the scan fails), whose groups of buckets hold at most ``merge_limit`` bytes
    (default: ``spill_limit``). ``lazy``: a SpilledPartial even when nothing spilled (its held
    buckets reduced group by group as the fold reads them, for a caller that streams them).
    """
    folder = spill_folder(work_dir or Path(tempfile.gettempdir()))
    try:
        return _scan(
            files, tags, summary, sink, on_batch, batch_size, workers, row_groups, before,
            spill_limit, folder, spill_limit if merge_limit is None else merge_limit, lazy,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _scan(
    files: list[tuple[str, bool]],
    tags: pa.Table,
    summary: JoinSummary,
    sink: RejectSink | None,
    on_batch: Callable[[int], None] | None,
    batch_size: int,
    workers: int,
    row_groups: dict[str, list[int]] | None,
    before: datetime | None,
    limit: int | None,
    folder: Path,
    merge_limit: int | None,
    lazy: bool = False,
) -> Partial:
    """scan_files' body; buckets that outgrow ``limit`` are spilled under ``folder``, and a
    spilled (or ``lazy``) result is read back in groups of at most ``merge_limit`` bytes."""
    index = TagIndex.build(tags)
    # Under a small budget the candidates are joined in smaller calls: they are held meanwhile.
    join_rows = _JOIN_ROWS if limit is None else min(_JOIN_ROWS, max(1024, limit // 64))
    buckets: UserBuckets | None = None  # the pairs by user range, cut at the first partial's
    surfaces: list[pa.Table] = []
    screens: deque[tuple[str, Future[list[BatchResult]]]] = deque()
    joins: deque[Future[tuple[int, Partial | None, Pieces]]] = deque()
    buffered: list[pa.Table] = []  # candidates, still to be joined exactly
    known: list[pa.Table] = []  # hits of dictionary-screened batches, tag already known
    buffered_rows = 0
    ending = False  # lazy, every screen submitted: what is still to come is reduced next

    def joined(done: Future[tuple[int, Partial | None, Pieces]], last: bool = False) -> None:
        kept, partial, pieces = done.result()
        summary.rows_kept += kept
        if partial is None:
            return
        surfaces.append(partial.surfaces)
        if buckets is None:
            return
        buckets.put(pieces)
        if limit is not None and buckets.held > limit and not (last or ending):
            # Only what overflows, down to half (the rest stays held). The scan's last partials
            # (the joins in flight at the end; for a lazy scan, whose buckets are reduced and
            # written next, all those of its last 2 * ``workers`` screens) are kept over the
            # limit: writing them on this thread, the workers done, left both cores waiting.
            buckets.spill_oldest(limit // 2)

    def flush(pool: ThreadPoolExecutor, last: bool = False) -> None:
        nonlocal buffered, known, buffered_rows, buckets
        if buckets is None and (buffered or known):
            # Cut at the first candidates' users: a sample of the users every later pair has.
            ids = [t["user_id"].cast(pa.string()) for t in (*buffered, *known)]
            users = pa.chunked_array([c for a in ids for c in a.chunks], pa.string())
            buckets = UserBuckets.around(users, folder)
        if buffered:
            rows = pa.concat_tables(buffered)
            joins.append(pool.submit(_cut, join_candidates, rows, index, buckets))
        if known:
            joins.append(pool.submit(_cut, join_known, pa.concat_tables(known), index, buckets))
        buffered, known, buffered_rows = [], [], 0
        while len(joins) > workers:
            joined(joins.popleft(), last)

    def screened(path: str, result: BatchResult, pool: ThreadPoolExecutor) -> None:
        nonlocal buffered_rows
        summary.rows_read += result.rows
        for reason, rows in result.rejected:
            summary.reject(reason, rows.num_rows)
            if sink is not None:
                sink(rows, reason, path)
        if on_batch:
            on_batch(result.rows)
        for rows, into in ((result.candidates, buffered), (result.hits, known)):
            if rows is not None and rows.num_rows:
                into.append(rows)
                buffered_rows += rows.num_rows
        if buffered_rows >= join_rows:
            flush(pool)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for path, ts_is_text, groups in _tasks(files, row_groups, batch_size):
            task = pool.submit(screen_file, path, ts_is_text, index, batch_size, groups, before)
            screens.append((path, task))
            while len(screens) > 2 * workers:
                path, done = screens.popleft()
                for result in done.result():
                    screened(path, result, pool)
        ending = lazy
        while screens:
            path, done = screens.popleft()
            for result in done.result():
                screened(path, result, pool)
        flush(pool, last=True)
        while joins:
            joined(joins.popleft(), last=True)
        surface_counts = merge_surfaces(surfaces)
        if buckets is None:
            return Partial(PAIR_SCHEMA.empty_table(), surface_counts)
        if not buckets and not lazy:
            return Partial(buckets.reduced(pool), surface_counts)
        # The fold streams the groups: held pieces are read where they are, in about
        # HELD_GROUPS groups (as reduced() cuts them), so the first is written early.
        pairs = buckets.held + int(buckets.spilled_bytes.sum())
        buckets.finish(max(1, pairs // HELD_GROUPS))
        limit = merge_limit or max(1, pairs)  # unbounded: no bucket over it
        return SpilledPartial(PAIR_SCHEMA.empty_table(), surface_counts, runs=buckets, limit=limit)


def _cut(
    join: Callable[..., tuple[int, Partial | None]],
    rows: pa.Table,
    index: TagIndex,
    buckets: UserBuckets | None,
) -> tuple[int, Partial | None, Pieces]:
    """A join task: ``rows`` joined and aggregated (in bucket order), and the pairs cut into
    ``buckets``."""
    kept, partial = join(rows, index, None if buckets is None else buckets.pivots)
    if partial is None or buckets is None:
        return kept, partial, []
    ends = partial.ends if isinstance(partial, BucketedPartial) else None
    return kept, partial, buckets.cut(partial.pairs, ends)


def _tasks(
    files: list[tuple[str, bool]],
    row_groups: dict[str, list[int]] | None,
    task_rows: int = 1 << 20,
) -> Iterator[tuple[str, bool, list[int] | None]]:
    """(path, ts is text, row groups) screening tasks: neighbouring row groups of a file up to
    ``task_rows`` rows (a batch: one group of pyarrow's default 1Mi rows, eight of 128Ki), so
    two workers share out a day of few large files evenly and small groups do not make the
    main thread's bookkeeping the scan's pace (all of a file's groups when its footer cannot
    be read: the read that follows names the file)."""
    for path, ts_is_text in files:
        groups = None if row_groups is None else row_groups.get(path, [])
        try:
            meta = footer(path)
        except (OSError, ValueError):
            yield path, ts_is_text, groups
            continue
        if groups is None:
            groups = list(range(meta.num_row_groups))
        if not groups:
            yield path, ts_is_text, []
        if any(not 0 <= g < meta.num_row_groups for g in groups):
            for group in groups:  # one task a group: the read names the missing one
                yield path, ts_is_text, [group]
            continue
        task: list[int] = []
        rows = 0
        for group in groups:
            if task and rows + meta.row_group(group).num_rows > task_rows:
                yield path, ts_is_text, task
                task, rows = [], 0
            task.append(group)
            rows += meta.row_group(group).num_rows
        if task:
            yield path, ts_is_text, task
