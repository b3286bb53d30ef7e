"""The join-engine seam: scan log partitions for tagged items into partial aggregates, and merge
partial aggregates into the exposure state. Every engine (local pyarrow, DuckDB, Spark)
implements JoinEngine and passes tests/contract/test_join_engine.py.
"""

from __future__ import annotations

import importlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from offline.io import logs as logfiles
from offline.io.parquet import write_parquet_chunks_atomic
from offline.join.contracts import (
    STATE_SCHEMA,
    ExposureState,
    JoinSummary,
    Partial,
    RejectSink,
    prepare_tags,
)
from offline.join.fold import StreamedState

# name -> "module:class"; imported on first use, so an engine's library is needed only by its users.
_ENGINES = {
    "local": "offline.join.local:LocalEngine",
    "duckdb": "offline.join.duckdb_engine:DuckDBEngine",
    "spark": "offline.join.spark_engine:SparkEngine",
}
ENGINE_NAMES = tuple(_ENGINES)
DEFAULT_ENGINE = "local"
# A URI with a scheme (s3a://, hdfs://, abfss://, gs://, file:/...), not a local path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def is_remote(path: str | Path) -> bool:
    """Whether ``path`` is a Hadoop URI (read through Spark) rather than a local path."""
    return isinstance(path, str) and bool(_SCHEME.match(path))


class JoinEngine(ABC):
    """Logs ⋉ tagged items, aggregated per (user, rumor).

    The two steps are apart because the nightly state keeps one partial aggregate per log
    partition on disk and merges only the lookback window: a late partition or a new tag is a
    ``scan`` of that partition (or of those tags) alone, a withdrawn rumor or an aged-out day is a
    ``merge_state`` without it. Both speak Arrow tables of the schemas in offline.join.contracts.
    """

    name: str = ""
    # Threads write_exposures reduces a streamed state's groups and encodes its columns on.
    write_threads: int = 2

    def spill_under(self, folder: Path) -> None:
        """Where the engine may spill when it was given no work folder of its own (the
        nightly's state folder); an engine that never spills ignores it."""
        return None

    def log_files(
        self, logs: Path | str, dates: list[str] | None = None
    ) -> tuple[list[str], list[Path | str]]:
        """The ``dt=`` partitions under ``logs`` (all, or those of ``dates``) and their files,
        in order. Here a local folder; an engine that reads Hadoop URIs lists those too."""
        wanted = self.log_partitions(logs) if dates is None else dates
        return wanted, [f for dt in wanted for f in logfiles.partition_files(Path(logs), dt)]

    def log_partitions(self, logs: Path | str) -> list[str]:
        """The ``dt=`` partitions under ``logs``, sorted (here a local folder; none when it is
        missing)."""
        self._refuse_remote(logs)
        return logfiles.partitions(Path(logs))

    def fingerprint(self, files: Sequence[Path | str]) -> str:
        """A partition's fingerprint from its files' names, sizes and modification times: it
        changes when a file is added, removed, rewritten or touched (offline.io.logs)."""
        for f in files:
            self._refuse_remote(f)
        return logfiles.fingerprint([Path(f) for f in files])

    def _refuse_remote(self, path: Path | str) -> None:
        if is_remote(path):
            raise ValueError(
                f"{path}: the {self.name} join engine reads local folders; "
                "a Hadoop URI needs --engine spark"
            )

    def scan(
        self,
        files: Sequence[Path | str],
        tags: pa.Table,
        summary: JoinSummary,
        *,
        sink: RejectSink | None = None,
        on_batch: Callable[[int], None] | None = None,
        before: datetime | None = None,
    ) -> Partial:
        """Partial aggregates of the rows of ``files`` on the items of ``tags`` (distinct
        (item_id, rumor_id) pairs, see prepare_tags). Rows that fail validation go to ``sink``
        with a reason and are counted in ``summary``; ``on_batch`` hears of rows as they are read.
        Given ``before`` (the snapshot's watermark), valid rows at or after it are left out: the
        live layer counts those (offline.nightly.cutoff).
        Every file's schema is checked before any row is read: an unusable one raises
        LogSchemaError naming the file and the column."""
        checked = self.checked_files(files, summary)
        return self.scan_checked(
            checked, tags, summary, sink=sink, on_batch=on_batch, before=before
        )

    def checked_files(
        self, files: Sequence[Path | str], summary: JoinSummary
    ) -> list[tuple[str, bool]]:
        """``files`` as scan_checked takes them, every schema checked first (counted in
        ``summary.files``); here local files only."""
        remote = next((f for f in files if is_remote(f)), None)
        if remote is not None:
            raise ValueError(
                f"{remote}: the {self.name} join engine reads local files; "
                "a Hadoop URI needs --engine spark"
            )
        checked = logfiles.check_files([Path(f) for f in files])
        summary.files += len(checked)
        return checked

    def scan_state(
        self,
        files: Sequence[Path | str],
        tags: pa.Table,
        summary: JoinSummary,
        *,
        sink: RejectSink | None = None,
    ) -> StreamedState:
        """merge_stream of one ``scan``: the state of these files for a writer that takes it
        chunk by chunk. An engine that can hand a scan's pairs over group by group while the
        caller writes (the local one) overrides it; the chunks are the same."""
        return self.merge_stream([self.scan(files, tags, summary, sink=sink)])

    @abstractmethod
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
        """``scan`` of files whose schemas passed: (path, whether ts is text) pairs.

        Rows are rejected with the first failing reason of: null_or_empty_user_id,
        null_or_empty_item_id, null_ts (unparseable_ts when ts is text), unknown_action,
        unknown_surface. ``summary.rows_read`` counts every row, ``rows_kept`` the valid rows on
        a tagged item (once, however many rumors the item carries)."""

    @abstractmethod
    def merge_state(
        self, partials: Iterable[Partial], confirmed: set[str] | None = None
    ) -> ExposureState:
        """The exposure state of all ``partials`` (consumed one at a time), restricted to the
        ``confirmed`` rumors when given: STATE_SCHEMA rows sorted by (user_id, rumor_id)."""

    def merge_stream(
        self, partials: Iterable[Partial], confirmed: set[str] | None = None
    ) -> StreamedState:
        """merge_state's rows as chunks in the same order, for writers that need not hold them
        all; here one chunk of merge_state (the local engine bounds what it holds)."""
        return StreamedState.of(self.merge_state(partials, confirmed))


def engine_named(name: str, **options: Any) -> JoinEngine:
    """A new engine of that name (see ENGINE_NAMES), built with its ``options`` (e.g. the Spark
    engine's ``master`` and ``conf``)."""
    target = _ENGINES.get(name)
    if target is None:
        known = ", ".join(ENGINE_NAMES)
        raise ValueError(f"unknown join engine {name!r}: expected one of {known}")
    module, cls = target.split(":")
    engine: JoinEngine = getattr(importlib.import_module(module), cls)(**options)
    return engine


def join_exposures(
    logs: Path | str,
    tags: pa.Table,
    *,
    dates: list[str] | None = None,
    sink: RejectSink | None = None,
    engine: JoinEngine | str = DEFAULT_ENGINE,
) -> tuple[pa.Table, JoinSummary]:
    """Exposure state per (user, rumor) from the logs (optionally only the ``dates`` partitions):
    a local folder, or a Hadoop URI for an engine that reads them (see JoinEngine.log_files)."""
    started = time.perf_counter()
    runner = engine_named(engine) if isinstance(engine, str) else engine
    summary = JoinSummary()
    wanted, files = runner.log_files(logs, dates)
    summary.partitions = len(wanted)
    partial = runner.scan(files, prepare_tags(tags), summary, sink=sink)
    state = runner.merge_state([partial]).exposures
    summary.pairs = state.num_rows
    summary.seconds = round(time.perf_counter() - started, 3)
    return state, summary


def write_exposures(
    logs: Path | str,
    tags: pa.Table,
    out: Path,
    *,
    sink: RejectSink | None = None,
    engine: JoinEngine | str = DEFAULT_ENGINE,
) -> JoinSummary:
    """join_exposures written to ``out`` (Parquet, aside then renamed) chunk by chunk, so the
    local engine never holds all pairs; the same file as writing join_exposures' table."""
    started = time.perf_counter()
    runner = engine_named(engine) if isinstance(engine, str) else engine
    summary = JoinSummary()
    wanted, files = runner.log_files(logs)
    summary.partitions = len(wanted)
    with (
        runner.scan_state(files, prepare_tags(tags), summary, sink=sink) as state,
        ThreadPoolExecutor(max_workers=max(1, runner.write_threads)) as pool,
    ):
        # One pool reduces the state's groups and encodes the output's columns (the same file).
        chunks = state.chunks(pool)
        _, summary.pairs = write_parquet_chunks_atomic(chunks, STATE_SCHEMA, out, pool=pool)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
