"""The local join engine: exposure logs streamed with pyarrow in bounded memory.

Logs are scanned batch by batch with column projection; the id prefilter (with its C scan)
drops most rows on untagged items, an exact lookup joins the rest to their rumors, and they are
aggregated at once. Memory grows with the number of exposed pairs, not with the logs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from offline.join.aggregate import finish_state, merge, merge_pairs, merge_surfaces
from offline.join.contracts import ExposureState, JoinSummary, Partial, RejectSink
from offline.join.engine import JoinEngine
from offline.join.screen import BatchResult, screen_file
from offline.join.tag_index import TagIndex, join_candidates

# Compact the partial aggregates of a scan once they hold this many rows.
_COMPACT_ROWS = 2_000_000
# Join the screened candidate rows once this many are buffered: the exact lookup builds its hash
# set of the tagged ids once per call, so calls on few rows would spend most time building it.
_JOIN_ROWS = 1 << 18


class LocalEngine(JoinEngine):
    """Streams Parquet with pyarrow on a pool of ``workers`` threads, ``batch_size`` rows at a
    time. Batches of up to 1M rows (a whole row group of the nightly files) measured ~5% faster
    than 256k ones, for ~40 MB more peak RSS: fewer per-batch calls, and the reader decodes each
    column chunk in one go."""

    name = "local"

    def __init__(self, *, batch_size: int = 1 << 20, workers: int = 2) -> None:
        self.batch_size = batch_size
        self.workers = workers

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
        )  # fmt: skip

    def merge_state(
        self, partials: Iterable[Partial], confirmed: set[str] | None = None
    ) -> ExposureState:
        """Folds the partials one by one, so memory stays at one state's size. A single
        partial holds each pair once already (see Partial) and is used as it is."""
        pairs: pa.Table | None = None
        surfaces: list[pa.Table] = []
        for partial in partials:
            pairs = partial.pairs if pairs is None else merge_pairs([pairs, partial.pairs])
            surfaces.append(partial.surfaces)
        if pairs is None:
            pairs = merge_pairs([])
        counts = merge_surfaces(surfaces)
        if confirmed is not None:
            keep = pa.array(sorted(confirmed), pa.string())
            pairs = pairs.filter(pc.is_in(pairs["rumor_id"], value_set=keep))
            counts = counts.filter(pc.is_in(counts["rumor_id"], value_set=keep))
        return ExposureState(finish_state(pairs), counts)


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
) -> Partial:
    """Aggregate the rows of checked ``files`` (path, ts is text) on tagged items (``tags``
    from prepare_tags); with ``row_groups``, only the row groups it lists for each path (a
    backfill reads what the item index names); with ``before``, valid rows before it only.

    Tasks share a pool of ``workers`` threads (Arrow kernels and numpy release the GIL): each
    file is decoded and screened batch by batch by one worker (validation, prefilter); the
    candidates of many batches are then joined exactly and aggregated in one task, and partial
    aggregates are compacted in another. At most ``2 * workers`` file tasks and ``workers`` join
    tasks are in flight, so memory stays flat.
    """
    index = TagIndex.build(tags)
    acc = Partial.empty()
    compacting: Future[Partial] | None = None  # merges acc with older partials, in the pool
    pending: list[Partial] = []
    pending_rows = 0
    screens: deque[tuple[str, Future[list[BatchResult]]]] = deque()
    joins: deque[Future[tuple[int, Partial | None]]] = deque()
    buffered: list[pa.Table] = []
    buffered_rows = 0

    def joined(done: Future[tuple[int, Partial | None]], pool: ThreadPoolExecutor) -> None:
        nonlocal acc, compacting, pending, pending_rows
        kept, partial = done.result()
        summary.rows_kept += kept
        if partial is not None:
            pending.append(partial)
            pending_rows += partial.pairs.num_rows
        if compacting is not None and compacting.done():
            acc, compacting = compacting.result(), None
        if pending_rows > _COMPACT_ROWS and compacting is None:
            # Compacting in the pool keeps this thread feeding batches meanwhile.
            compacting = pool.submit(merge, [acc, *pending])
            pending, pending_rows = [], 0

    def flush(pool: ThreadPoolExecutor) -> None:
        nonlocal buffered, buffered_rows
        if buffered:
            joins.append(pool.submit(join_candidates, pa.concat_tables(buffered), index))
            buffered, buffered_rows = [], 0
        while len(joins) > workers:
            joined(joins.popleft(), pool)

    def screened(path: str, result: BatchResult, pool: ThreadPoolExecutor) -> None:
        nonlocal buffered_rows
        summary.rows_read += result.rows
        for reason, rows in result.rejected:
            summary.reject(reason, rows.num_rows)
            if sink is not None:
                sink(rows, reason, path)
        if on_batch:
            on_batch(result.rows)
        if result.candidates is not None and result.candidates.num_rows:
            buffered.append(result.candidates)
            buffered_rows += result.candidates.num_rows
            if buffered_rows >= _JOIN_ROWS:
                flush(pool)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for path, ts_is_text in files:
            groups = None if row_groups is None else row_groups.get(path, [])
            task = pool.submit(
                screen_file, path, ts_is_text, index.prefilter, batch_size, groups, before
            )
            screens.append((path, task))
            while len(screens) > 2 * workers:
                path, done = screens.popleft()
                for result in done.result():
                    screened(path, result, pool)
        while screens:
            path, done = screens.popleft()
            for result in done.result():
                screened(path, result, pool)
        flush(pool)
        while joins:
            joined(joins.popleft(), pool)
        if compacting is not None:
            acc = compacting.result()
        return merge([acc, *pending], pool)
