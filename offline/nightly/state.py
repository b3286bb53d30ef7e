"""The incremental nightly exposure state on disk.

Each log partition is scanned once into immutable per-partition aggregates; a run scans only
partitions that are new or changed (late data), back-fills newly tagged items from the partitions
inside the lookback window, and merges the window into a new generation of outputs. Given a
watermark (``offline.nightly.cutoff``), a partition whose day does not end before it counts only
its rows before it, and is scanned again when a later run's watermark differs. A generation
becomes current by one atomic symlink flip, so a run killed at any moment leaves the previous
state intact, and re-running the same date changes nothing. Scans and merges go through a
JoinEngine (offline.join.engine), so any engine keeps the same state folder.

Layout under the state folder::

    current -> generations/<run_id>     the outputs readers use (exposures, audience, manifest)
    generations/<run_id>/               exposures.parquet, audience.parquet, manifest.json
    parts/dt=YYYY-MM-DD/                immutable pairs-*, surfaces-* aggregates of one partition
    rejects/dt=YYYY-MM-DD/              rejected log rows with a reason, per scan
    runs/<date>-<run_id>.json           run summaries
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from domain.exposure_days import day_end
from offline.io.parquet import write_parquet_atomic, write_parquet_chunks_atomic
from offline.io.rejects import RejectWriter
from offline.join.contracts import (
    MISSING_TAG_SCORE,
    PAIR_SCHEMA,
    STATE_SCHEMA,
    TAG_PAIR_SCHEMA,
    JoinSummary,
    Partial,
    prepare_tags,
    with_tag_score,
)
from offline.join.engine import DEFAULT_ENGINE, JoinEngine, engine_named, is_remote
from offline.join.fold import SpilledPartial, StreamedState, pair_chunks
from offline.nightly.audience import AudienceBuilder
from offline.nightly.manifest import Manifest, PartitionEntry
from offline.progress import RowProgress

KEEP_GENERATIONS = 2


@dataclass
class StateRun:
    """The outcome of one state update."""

    generation: Path
    summary: dict[str, Any]

    @property
    def exposures(self) -> Path:
        return self.generation / "exposures.parquet"

    @property
    def audience(self) -> Path:
        return self.generation / "audience.parquet"


def window(run_date: date, lookback_days: int, available: list[str]) -> list[str]:
    """The partitions inside the lookback window ending on ``run_date`` that exist."""
    first = (run_date - timedelta(days=lookback_days - 1)).isoformat()
    return [d for d in available if first <= d <= run_date.isoformat()]


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One writer per state folder at a time."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{state_dir}: another nightly run holds the lock") from None
        yield


def current_generation(state_dir: Path) -> Path | None:
    """The generation folder ``current`` points at, if any."""
    link = state_dir / "current"
    return link.resolve() if link.exists() else None


def _anti_join(left: pa.Table, right: pa.Table) -> pa.Table:
    """Rows of ``left`` whose (item_id, rumor_id, tag_score) is not in ``right``: a tag whose
    score changed is both removed and added, so the window is rescanned with the new score."""
    if right.num_rows == 0 or left.num_rows == 0:
        return left
    keys = ["item_id", "rumor_id", "tag_score"]
    return left.join(right, keys=keys, join_type="left anti", use_threads=False)


def applied_tags(path: Path) -> pa.Table:
    """A generation's stored tag set; one written before tag scores has MISSING_TAG_SCORE, so
    a matched tag's real score shows as a change and the next run rescans the window."""
    tags = pq.read_table(path)
    if "tag_score" not in tags.column_names:
        fill = pa.array([MISSING_TAG_SCORE] * tags.num_rows, pa.float32())
        tags = tags.append_column("tag_score", fill)
    return tags.select(TAG_PAIR_SCHEMA.names).cast(TAG_PAIR_SCHEMA)


class StateUpdate:
    """One run: decide what to scan, scan it, merge the window, flip the generation."""

    def __init__(
        self,
        logs: Path | str,
        state_dir: Path,
        run_date: date,
        lookback_days: int,
        engine: JoinEngine,
        live_after: int | None = None,
    ) -> None:
        self.logs = logs
        self.live_after = live_after
        self.engine = engine
        engine.spill_under(state_dir)  # a spill is removed by the run; a killed one's is swept
        self.dir = state_dir
        self.run_date = run_date
        self.lookback_days = lookback_days
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]
        self.join = JoinSummary()
        self.backfill = JoinSummary()
        self.actions: dict[str, list[str]] = {
            "scanned": [],
            "backfilled": [],
            "unchanged": [],
            "aged_out": [],
        }

    def _path(self, rel: str) -> Path:
        return self.dir / rel

    def _write_partial(self, dt: str, kind: str, partial: Partial) -> tuple[str, str]:
        """A scan's partial into the partition's part files; a spilled one is written range by
        range (sorted, as an in-memory one is) and its spill removed."""
        base = f"parts/dt={dt}"
        pairs = f"{base}/pairs-{kind}-{self.run_id}.parquet"
        surfaces = f"{base}/surfaces-{kind}-{self.run_id}.parquet"
        try:
            if isinstance(partial, SpilledPartial):
                write_parquet_chunks_atomic(pair_chunks(partial), PAIR_SCHEMA, self._path(pairs))
            else:
                write_parquet_atomic(partial.pairs, self._path(pairs))
        finally:
            if isinstance(partial, SpilledPartial):
                partial.close()
        write_parquet_atomic(partial.surfaces, self._path(surfaces))
        return pairs, surfaces

    def _before(self, dt: str) -> int | None:
        """The watermark partition ``dt``'s rows are cut at: None when its day ends by then."""
        if self.live_after is None or day_end(date.fromisoformat(dt)) <= self.live_after:
            return None
        return self.live_after

    def _scan(
        self, dt: str, files: list[Path | str], tags: pa.Table, kind: str, progress: RowProgress
    ) -> tuple[str, str, str | None]:
        rejects = RejectWriter(self._path(f"rejects/dt={dt}/rejects-{kind}-{self.run_id}.parquet"))
        full = kind == "full"
        cut = self._before(dt)
        partial = self.engine.scan(
            files,
            tags,
            self.join if full else self.backfill,
            sink=rejects.add if full else None,
            on_batch=progress.advance,
            before=None if cut is None else datetime.fromtimestamp(cut, UTC),
        )
        pairs, surfaces = self._write_partial(dt, kind, partial)
        written = rejects.close()
        rel = str(written.relative_to(self.dir)) if written else None
        return pairs, surfaces, rel

    def run(self, tags: pa.Table, confirmed: set[str] | None) -> StateRun:
        started = time.perf_counter()
        old = Manifest.load(self.dir / "current" / "manifest.json")
        tags_now = prepare_tags(tags)
        applied = applied_tags(self._path(old.tags_file)) if old.tags_file else tags_now.slice(0, 0)
        added, removed = _anti_join(tags_now, applied), _anti_join(applied, tags_now)
        dts = window(self.run_date, self.lookback_days, self.engine.log_partitions(self.logs))
        plan = self._plan(old, dts, added, removed)
        new = Manifest(self.run_date.isoformat(), self.lookback_days, old.tags_file)
        total_rows = sum(_row_count(files) for _, files, _, action in plan if action != "keep")
        with RowProgress(total_rows, f"nightly {self.run_date}") as progress:
            for dt, files, fp, action in plan:
                entry = old.partitions.get(dt)
                if action == "full":
                    pairs, surfaces, rejects = self._scan(dt, files, tags_now, "full", progress)
                    entry = PartitionEntry(
                        fp, [pairs], [surfaces], [rejects] if rejects else [], self._before(dt)
                    )
                    self.actions["scanned"].append(dt)
                elif action == "backfill":
                    assert entry is not None
                    pairs, surfaces, _ = self._scan(dt, files, added, "tags", progress)
                    entry = PartitionEntry(
                        fp, [*entry.pairs, pairs], [*entry.surfaces, surfaces], entry.rejects,
                        entry.before,
                    )  # fmt: skip
                    self.actions["backfilled"].append(dt)
                else:
                    self.actions["unchanged"].append(dt)
                assert entry is not None
                new.partitions[dt] = entry
        self.actions["aged_out"] = sorted(set(old.partitions) - set(new.partitions))
        if added.num_rows or removed.num_rows or not old.tags_file:
            new.tags_file = f"parts/tags-{self.run_id}.parquet"
            write_parquet_atomic(tags_now, self._path(new.tags_file))
        generation = self._write_generation(new, confirmed)
        summary = self._summary(new, generation, added.num_rows, removed.num_rows, started)
        self._flip(generation)
        self._collect(keep=KEEP_GENERATIONS)
        return StateRun(generation, summary)

    def _plan(
        self, old: Manifest, dts: list[str], added: pa.Table, removed: pa.Table
    ) -> list[tuple[str, list[Path | str], str, str]]:
        """(dt, files, fingerprint, full|backfill|keep) for every partition in the window; the
        engine lists and fingerprints the files (a Hadoop URI's through Spark)."""
        plan = []
        for dt in dts:
            _, files = self.engine.log_files(self.logs, [dt])
            fp = self.engine.fingerprint(files)
            entry = old.partitions.get(dt)
            cut_moved = entry is not None and entry.before != self._before(dt)
            if entry is None or entry.fingerprint != fp or removed.num_rows or cut_moved:
                action = "full"
            elif added.num_rows:
                action = "backfill"
            else:
                action = "keep"
            plan.append((dt, files, fp, action))
        return plan

    def _write_generation(self, manifest: Manifest, confirmed: set[str] | None) -> Path:
        generation = self.dir / "generations" / self.run_id
        generation.mkdir(parents=True, exist_ok=True)
        audience = AudienceBuilder()

        def chunks(merged: StreamedState) -> Iterator[pa.Table]:
            for chunk in merged.chunks():
                audience.add(chunk)
                yield chunk

        # The state is written (and the audience counted) one user range at a time.
        with self.engine.merge_stream(self._partials(manifest), confirmed) as merged:
            _, self._pairs = write_parquet_chunks_atomic(
                chunks(merged), STATE_SCHEMA, generation / "exposures.parquet"
            )
            built = audience.finish(merged.surfaces)
        write_parquet_atomic(built, generation / "audience.parquet")
        (generation / "manifest.json").write_text(manifest.dump())
        return generation

    def _partials(self, manifest: Manifest) -> Iterator[Partial]:
        """The window's partial aggregates, read one row group at a time as the engine folds
        (pairs stored before tag scores read as hand-tagged: with_tag_score)."""
        for entry in manifest.partitions.values():
            for pairs, surfaces in zip(entry.pairs, entry.surfaces, strict=True):
                counts = pq.read_table(self._path(surfaces))
                stored = pq.ParquetFile(self._path(pairs))
                for group in range(stored.num_row_groups):
                    rows = with_tag_score(stored.read_row_group(group))
                    yield Partial(rows, counts if group == 0 else counts.slice(0, 0))
                if not stored.num_row_groups:
                    yield Partial(with_tag_score(stored.read()), counts)

    def _flip(self, generation: Path) -> None:
        link = self.dir / "current"
        tmp = self.dir / f".current-{self.run_id}"
        os.symlink(os.path.relpath(generation, self.dir), tmp)
        os.replace(tmp, link)

    def _collect(self, keep: int) -> None:
        """Remove generations beyond ``keep`` and part files no kept generation references."""
        gens = sorted((self.dir / "generations").iterdir(), key=lambda p: p.name)
        current = current_generation(self.dir)
        kept = [g for g in gens[-keep:]] + ([current] if current else [])
        for g in gens:
            if g not in kept:
                shutil.rmtree(g, ignore_errors=True)
        referenced: set[str] = set()
        for g in kept:
            referenced |= Manifest.load(g / "manifest.json").referenced()
        for folder in ("parts", "rejects"):
            for f in (self.dir / folder).rglob("*.parquet") if (self.dir / folder).exists() else []:
                if str(f.relative_to(self.dir)) not in referenced:
                    f.unlink(missing_ok=True)
            for d in (
                sorted((self.dir / folder).glob("dt=*")) if (self.dir / folder).exists() else []
            ):
                with contextlib.suppress(OSError):
                    d.rmdir()  # only when empty

    def _summary(
        self, manifest: Manifest, generation: Path, added: int, removed: int, started: float
    ) -> dict[str, Any]:
        import resource

        return {
            "run_id": self.run_id,
            "run_date": self.run_date.isoformat(),
            "lookback_days": self.lookback_days,
            "engine": self.engine.name,
            "window": sorted(manifest.partitions),
            "live_after": self.live_after,
            "partitions": self.actions,
            "tags": {"added": added, "removed": removed},
            "join": self.join.as_dict(),
            "backfill": self.backfill.as_dict(),
            "pairs": self._pairs,
            "generation": str(generation),
            "elapsed_s": round(time.perf_counter() - started, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }


def _row_count(files: list[Path | str]) -> int:
    """The rows of the local files, for the progress bar (remote ones are not opened here)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files if not is_remote(f))


def update_state(
    logs: Path | str,
    tags: pa.Table,
    state_dir: Path,
    run_date: date,
    *,
    lookback_days: int = 30,
    confirmed: set[str] | None = None,
    engine: JoinEngine | str = DEFAULT_ENGINE,
    live_after: int | None = None,
) -> StateRun:
    """Bring the state up to ``run_date`` and flip to the new generation (see module doc),
    scanning and merging with ``engine`` (an engine or its name, see engine_named); with
    ``live_after``, the rows at or after that watermark are left to the live layer."""
    runner = engine_named(engine) if isinstance(engine, str) else engine
    with _locked(state_dir):
        update = StateUpdate(logs, state_dir, run_date, lookback_days, runner, live_after)
        return update.run(tags, confirmed)
