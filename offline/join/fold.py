"""Merging partial aggregates into the exposure state within a memory budget.

Partials are folded in memory while the held pairs stay under the limit; beyond it the reduced
pairs are spilled (offline.join.spill) and the state is produced one user-range group at a time.
A spilled partial (a scan that outgrew the budget) streams its groups in without being read
whole. The chunks come out in (user_id, rumor_id) order, so writing them one after the other
gives the same file as the one in-memory table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.compute as pc

from offline.join.aggregate import finish_state, merge_surfaces, reduce_pairs
from offline.join.buckets import UserBuckets
from offline.join.contracts import STATE_SCHEMA, ExposureState, Partial
from offline.join.spill import SpillRuns, spill_folder


@dataclass
class SpilledPartial(Partial):
    """A scan's partial whose pairs are on disk (``runs``); ``pairs`` is empty."""

    runs: SpillRuns | UserBuckets | None = None
    limit: int = 0

    def close(self) -> None:
        """Remove the runs."""
        if self.runs is not None:
            self.runs.close()


def pair_chunks(
    partial: Partial,
    finish: Callable[[pa.Table], pa.Table] | None = None,
    pool: Executor | None = None,
) -> Iterator[pa.Table]:
    """The pairs of ``partial``: its table, or a spilled one's reduced groups in order; with
    ``finish``, each chunk passed through it (a scan's bucket groups on the thread that reduced
    them, of ``pool`` when given)."""
    then = finish or _same
    if isinstance(partial, SpilledPartial) and isinstance(partial.runs, UserBuckets):
        yield from partial.runs.merged(partial.limit, finish=finish, pool=pool)
    elif isinstance(partial, SpilledPartial) and partial.runs is not None:
        yield from map(then, partial.runs.merged(partial.limit))
    if partial.pairs.num_rows:
        yield then(partial.pairs)


def _same(table: pa.Table) -> pa.Table:
    return table


@dataclass
class StreamedState:
    """Merged aggregates as STATE_SCHEMA chunks in (user_id, rumor_id) order (``chunks``, read
    once) and the per (rumor, surface) counts; ``close`` (or leaving a with block) removes the
    spill."""

    surfaces: pa.Table
    held: pa.Table | None = None  # the pairs when they fit in memory
    spilled: list[Partial] = field(default_factory=list)  # a spilled scan streamed as it is
    runs: SpillRuns | None = None
    limit: int = 0
    keep: pa.Array | None = None
    done: pa.Table | None = None  # a state another engine merged whole (STATE_SCHEMA)

    @classmethod
    def of(cls, state: ExposureState) -> StreamedState:
        """A whole in-memory state as a stream of one chunk."""
        return cls(state.surfaces, done=state.exposures)

    def chunks(self, pool: Executor | None = None) -> Iterator[pa.Table]:
        """The state, chunk by chunk (empty chunks skipped; none at all for no pairs); a
        streamed scan's groups are reduced on ``pool`` when given (the writer's)."""
        if self.done is not None and self.done.num_rows:
            yield self.done
        if self.held is not None and self.held.num_rows:
            yield finish_state(self.held)
        sources = [pair_chunks(p, self._finish, pool) for p in self.spilled]
        if self.runs is not None:
            sources.append(map(self._finish, self.runs.merged(self.limit)))
        for source in sources:
            for chunk in source:  # reduced groups: in order already
                if chunk.num_rows:
                    yield chunk

    def _finish(self, pairs: pa.Table) -> pa.Table:
        """A reduced group's state rows (of the kept rumors)."""
        return finish_state(_kept(pairs, self.keep), ordered=True)

    def table(self) -> ExposureState:
        """The whole state in memory (what merge_state returns)."""
        tables = list(self.chunks())
        exposures = pa.concat_tables(tables) if tables else STATE_SCHEMA.empty_table()
        return ExposureState(exposures, self.surfaces)

    def close(self) -> None:
        """Remove every spill this state reads from."""
        for partial in self.spilled:
            if isinstance(partial, SpilledPartial):
                partial.close()
        if self.runs is not None:
            self.runs.close()

    def __enter__(self) -> StreamedState:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _kept(pairs: pa.Table, keep: pa.Array | None) -> pa.Table:
    """The pairs of the ``keep`` rumors (all without it)."""
    if keep is None:
        return pairs
    return pairs.filter(pc.is_in(pairs["rumor_id"], value_set=keep))


def fold(
    partials: Iterable[Partial],
    confirmed: set[str] | None,
    *,
    limit: int | None,
    work_dir: Path,
) -> StreamedState:
    """The state of all ``partials`` (consumed here, one at a time): pairs held in memory up to
    ``limit`` bytes (None: no limit), spilled under ``work_dir`` beyond it."""
    keep = None if confirmed is None else pa.array(sorted(confirmed), pa.string())
    state = StreamedState(merge_surfaces([]), limit=limit or 0, keep=keep)
    surfaces: list[pa.Table] = []
    pending: list[pa.Table] = []
    held = 0
    try:
        items = iter(partials)
        first = next(items, None)
        second = next(items, None)
        if isinstance(first, SpilledPartial) and second is None:
            state.spilled.append(first)  # one spilled scan: its groups are already the state
            state.surfaces = _kept_surfaces(merge_surfaces([first.surfaces]), keep)
            return state
        if first is not None and second is None:
            # One partial in memory holds each pair once (the Partial contract): it is the
            # state as it is. Spilling it would free nothing (the caller holds it) and cost a
            # reduce, a write and a read (decision 0059).
            state.held = _kept(first.pairs, keep)
            state.surfaces = _kept_surfaces(merge_surfaces([first.surfaces]), keep)
            return state
        rest = [p for p in (first, second) if p is not None]
        for partial in _chain(rest, items):
            surfaces.append(partial.surfaces)
            for chunk in pair_chunks(partial):
                chunk = _kept(chunk, keep)
                big = state.runs is not None or chunk.nbytes > limit // 2 if limit else False
                if big and second is not None:  # one partial's pairs are the state already
                    # Spilling already, or a large chunk (a part file's row group: reduced and
                    # sorted): a run as it is, without another merge in memory.
                    if state.runs is None:
                        state.runs = SpillRuns(spill_folder(work_dir))
                    state.runs.add(chunk)
                    continue
                pending.append(chunk)
                held += chunk.nbytes
                if limit is not None and held > limit:
                    merged = reduce_pairs(pa.concat_tables(pending))
                    pending, held = [merged], merged.nbytes
                    if held > limit // 2:
                        if state.runs is None:
                            state.runs = SpillRuns(spill_folder(work_dir))
                        state.runs.add(merged, ordered=True)
                        pending, held = [], 0
            if isinstance(partial, SpilledPartial):
                partial.close()
        tables = [t for t in pending if t.num_rows]
        if state.runs is not None:
            if tables:
                state.runs.add(reduce_pairs(pa.concat_tables(tables)), ordered=True)
        elif len(tables) == 1:
            state.held = tables[0]  # one partial holds each pair once already, sorted
        elif tables:
            state.held = reduce_pairs(pa.concat_tables(tables))
        state.surfaces = _kept_surfaces(merge_surfaces(surfaces), keep)
        return state
    except BaseException:
        state.close()
        raise


def _chain(head: list[Partial], tail: Iterator[Partial]) -> Iterator[Partial]:
    yield from head
    yield from tail


def _kept_surfaces(counts: pa.Table, keep: pa.Array | None) -> pa.Table:
    """The surface counts of the ``keep`` rumors (all without it)."""
    if keep is None:
        return counts
    return counts.filter(pc.is_in(counts["rumor_id"], value_set=keep))
