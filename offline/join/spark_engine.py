"""The Spark join engine: the same scan and merge as the local engine, as PySpark DataFrame
plans, for logs that live in a data lake (any Hadoop-compatible path) and nights that need more
than one machine. The driver hands Arrow tables in and out (the JoinEngine contract); the
scanning, joining and aggregating run on the executors.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.vocab import SURFACES
from offline.io import logs as logfiles
from offline.join import spark_frames as frames
from offline.join import spark_session
from offline.join.contracts import (
    PAIR_SCHEMA,
    STATE_SCHEMA,
    SURFACE_COUNT_SCHEMA,
    ExposureState,
    JoinSummary,
    Partial,
    RejectSink,
)
from offline.join.engine import JoinEngine, is_remote
from offline.join.spark_schema import check_remote, list_remote, remote_partitions, remote_stats

_TAG_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("rumor_id", pa.string()),
        ("tag_score", pa.float32()),
        ("primary", pa.bool_()),
    ]
)
# Spark's own message for the data it could not read, kept short in ours.
_MESSAGE_CHARS = 400


class SparkEngine(JoinEngine):
    """Runs on the process's SparkSession (see spark_session), created on first use with
    ``master`` (default local[2]) and ``conf``; pyspark is imported only then."""

    name = "spark"

    def __init__(self, *, master: str | None = None, conf: dict[str, str] | None = None) -> None:
        self.master = master
        self.conf = dict(conf or {})

    @property
    def session(self) -> Any:
        return spark_session.get_session(self.master, self.conf)

    def log_files(
        self, logs: Path | str, dates: list[str] | None = None
    ) -> tuple[list[str], list[Path | str]]:
        """As JoinEngine.log_files; a Hadoop URI is listed through Spark's filesystems."""
        if not is_remote(logs):
            return super().log_files(logs, dates)
        wanted, files = list_remote(self.session, str(logs), dates)
        return wanted, list(files)

    def log_partitions(self, logs: Path | str) -> list[str]:
        """As JoinEngine.log_partitions; a Hadoop URI is listed through Spark's filesystems
        (FileNotFoundError when the folder is missing)."""
        if not is_remote(logs):
            return super().log_partitions(logs)
        return remote_partitions(self.session, str(logs))

    def fingerprint(self, files: Sequence[Path | str]) -> str:
        """As JoinEngine.fingerprint; a remote file's size and modification time come from
        Hadoop's FileStatus (the same fingerprint as a local file's, to the millisecond)."""
        if not any(is_remote(f) for f in files):
            return super().fingerprint(files)
        return logfiles.fingerprint_of(remote_stats(self.session, [str(f) for f in files]))

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
        """As JoinEngine.scan; a remote file (``s3a://``, ``hdfs://``, ``file:`` …) has its
        schema checked through Spark, with the same messages naming the file and column."""
        checked: list[tuple[str, bool]] = []
        for f in files:
            text = str(f)
            if is_remote(text):
                checked.append((text, check_remote(self.session, text)))
            else:
                checked.extend(logfiles.check_files([Path(f)]))
        summary.files += len(checked)
        return self.scan_checked(
            checked, tags, summary, sink=sink, on_batch=on_batch, before=before
        )

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
        if not files:
            return Partial.empty()
        spark = self.session
        groups = [[p for p, text in files if text == kind] for kind in (False, True)]
        parts = [
            (frames.checked(spark, paths, kind), paths)
            for kind, paths in zip((False, True), groups, strict=True)
            if paths
        ]
        given = _resolver([p for p, _ in files])
        try:
            counts = _collect_counts([frame for frame, _ in parts])
            self._count(files, given, counts, summary, on_batch)
            all_paths = {p for p, _ in files}
            if sink is not None and any(reason for _, reason in counts):
                for frame, paths in parts:
                    self._reject(frame, paths, all_paths, given, counts, sink)
            valid = [frames.valid_rows(frame, before) for frame, _ in parts]
            return self._aggregate(_union(valid), tags, summary)
        except Exception as e:
            failed = _read_error(e, [p for p, _ in files]) if _is_spark_error(e) else None
            if failed is None:
                raise
            raise failed from None

    @staticmethod
    def _count(
        files: list[tuple[str, bool]],
        given: Callable[[str], str],
        counts: dict[tuple[str, str | None], int],
        summary: JoinSummary,
        on_batch: Callable[[int], None] | None,
    ) -> None:
        per_file: dict[str, int] = {}
        for (spark_file, reason), n in counts.items():
            path = given(spark_file)
            per_file[path] = per_file.get(path, 0) + n
            if reason is not None:
                summary.reject(reason, n)
        summary.rows_read += sum(per_file.values())
        if on_batch:
            for path in _in_order([p for p, _ in files], per_file):
                on_batch(per_file[path])

    @staticmethod
    def _reject(
        frame: Any,
        paths: list[str],
        everything: set[str],
        given: Callable[[str], str],
        counts: dict[tuple[str, str | None], int],
        sink: RejectSink,
    ) -> None:
        """Hand the rejected rows of ``paths`` to ``sink``, file by file, reason by reason, in
        file row order (bad rows are few: they are collected to the driver)."""
        from pyspark.sql import functions as F

        rejected = {given(f) for (f, reason) in counts if reason}
        if rejected.isdisjoint(paths) and rejected.issubset(everything):
            return  # none of this frame's files had a bad row
        columns = [*logfiles.LOG_COLUMNS, frames.FILE, frames.ROW, "reason"]
        bad = frame.filter(F.col("reason").isNotNull()).select(*columns)
        rows = to_arrow(bad.orderBy(frames.FILE, frames.ROW))
        files = pa.array([given(f) for f in rows[frames.FILE].to_pylist()], pa.string())
        for path in _in_order(paths, set(files.to_pylist())):
            mine = rows.filter(pc.equal(files, path))
            for reason in frames.REASONS:
                picked = mine.filter(pc.equal(mine["reason"], reason))
                if picked.num_rows:
                    sink(_as_written(picked.select(list(logfiles.LOG_COLUMNS)), path), reason, path)

    def _aggregate(self, valid: Any, tags: pa.Table, summary: JoinSummary) -> Partial:
        """One job: the pairs come back with their kept rows and per-surface row counts, and
        the (few) per (rumor, surface) counts are summed from them here."""
        rows = to_arrow(frames.pair_rows(valid, from_arrow(self.session, primary_tags(tags))))
        summary.rows_kept += int(pc.sum(rows["kept"]).as_py() or 0) if rows.num_rows else 0
        pairs = rows.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA)
        return Partial(pairs, surface_totals(rows))

    def merge_state(
        self, partials: Iterable[Partial], confirmed: set[str] | None = None
    ) -> ExposureState:
        """The partials are handed to Spark one by one and merged there in one plan."""
        spark = self.session
        pairs, surfaces = [], []
        for partial in partials:
            if partial.pairs.num_rows:
                pairs.append(from_arrow(spark, partial.pairs.select(PAIR_SCHEMA.names)))
            if partial.surfaces.num_rows:
                counts = partial.surfaces.select(SURFACE_COUNT_SCHEMA.names)
                surfaces.append(from_arrow(spark, counts))
        if not pairs:
            pairs = [from_arrow(spark, PAIR_SCHEMA.empty_table())]
        if not surfaces:
            surfaces = [from_arrow(spark, SURFACE_COUNT_SCHEMA.empty_table())]
        all_pairs, all_surfaces = _union(pairs), _union(surfaces)
        if confirmed is not None:
            rumors = pa.array(sorted(confirmed), pa.string())
            keep = from_arrow(spark, pa.table({"rumor_id": rumors}))
            all_pairs = all_pairs.join(_broadcast(keep), "rumor_id", "left_semi")
            all_surfaces = all_surfaces.join(_broadcast(keep), "rumor_id", "left_semi")
        state = to_arrow(frames.merged_state(all_pairs)).select(STATE_SCHEMA.names)
        counts = to_arrow(frames.merged_counts(all_surfaces)).select(SURFACE_COUNT_SCHEMA.names)
        return ExposureState(state.cast(STATE_SCHEMA), counts.cast(SURFACE_COUNT_SCHEMA))


def primary_tags(tags: pa.Table) -> pa.Table:
    """Distinct (item_id, rumor_id) pairs and their tag_score, with ``primary`` set on each
    item's first rumor, so a row joined to several rumors is counted once."""
    ordered = tags.select(["item_id", "rumor_id", "tag_score"]).sort_by(
        [("item_id", "ascending"), ("rumor_id", "ascending")]
    )
    items = ordered["item_id"].combine_chunks()
    first = np.ones(len(items), dtype=bool)
    if len(items) > 1:
        first[1:] = pc.not_equal(items[1:], items[:-1]).to_numpy(zero_copy_only=False)
    return pa.table(
        {
            "item_id": items,
            "rumor_id": ordered["rumor_id"],
            "tag_score": ordered["tag_score"],
            "primary": pa.array(first),
        },
        schema=_TAG_SCHEMA,
    )


def surface_totals(rows: pa.Table) -> pa.Table:
    """Per (rumor, surface) exposure counts (SURFACE_COUNT_SCHEMA, sorted) from the pair rows'
    per-surface row counts; a surface no row was on is left out."""
    if not rows.num_rows:
        return SURFACE_COUNT_SCHEMA.empty_table()
    summed = rows.group_by("rumor_id", use_threads=False).aggregate(
        [(c, "sum") for c in frames.SURFACE_COLUMNS]
    )
    parts = []
    for column, surface in zip(frames.SURFACE_COLUMNS, SURFACES, strict=True):
        n = summed[f"{column}_sum"]
        some = pc.greater(n, 0)
        rumors = summed["rumor_id"].filter(some)
        parts.append(
            pa.table(
                {
                    "rumor_id": rumors,
                    "surface": pa.array([surface] * len(rumors), pa.string()),
                    "exposures": n.filter(some).cast(pa.int64()),
                },
                schema=SURFACE_COUNT_SCHEMA,
            )
        )
    return pa.concat_tables(parts).sort_by([("rumor_id", "ascending"), ("surface", "ascending")])


def from_arrow(session: Any, table: pa.Table) -> Any:
    """A DataFrame of an Arrow table (sent from the driver)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # pyspark on pandas 3
        if int(spark_session.pyspark_module().__version__.split(".")[0]) >= 4:
            return session.createDataFrame(table)
        return session.createDataFrame(table.to_pandas(), schema=_spark_schema(table.schema))


def to_arrow(frame: Any) -> pa.Table:
    """A DataFrame collected to the driver as Arrow."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        if hasattr(frame, "toArrow"):
            return frame.toArrow()
        batches = frame._collect_as_arrow()  # pyspark 3.5
        if batches:
            return pa.Table.from_batches(batches)
        from pyspark.sql.pandas.types import to_arrow_schema

        try:  # pyspark 4 asks for the zone of timestamps; 3.5 always gives UTC
            return to_arrow_schema(frame.schema, timezone="UTC").empty_table()
        except TypeError:
            return to_arrow_schema(frame.schema).empty_table()


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _broadcast(frame: Any) -> Any:
    from pyspark.sql import functions as F

    return F.broadcast(frame)


def _union(frames_: list[Any]) -> Any:
    out = frames_[0]
    for frame in frames_[1:]:
        out = out.unionByName(frame)
    return out


def _collect_counts(parts: list[Any]) -> dict[tuple[str, str | None], int]:
    """Rows per (Spark's file name, reason) over every file, in one job."""
    counted = [p.groupBy(frames.FILE, "reason").count() for p in parts]
    return {(r[0], r[1]): int(r[2]) for r in _union(counted).collect()}


def _canonical(path: str) -> str:
    """A path as Spark names it and as it was given compare equal in this form."""
    parsed = urlparse(path)
    if parsed.scheme in ("", "file"):
        return os.path.abspath(unquote(parsed.path))
    return unquote(path)


def _resolver(paths: list[str]) -> Callable[[str], str]:
    """Spark's file name (``file:/a%20b``) -> the path as given, through a canonical form."""
    given = {_canonical(p): p for p in paths}
    return lambda spark_file: given.get(_canonical(spark_file), spark_file)


def _as_written(rows: pa.Table, path: str) -> pa.Table:
    """Rejected rows with ts as the file has it: Spark reads a naive timestamp as UTC."""
    ts = rows.schema.field("ts").type
    local = pa.types.is_timestamp(ts) and not is_remote(path)
    if local and pq.read_schema(path).field("ts").type.tz is None:
        naive = pc.cast(rows["ts"], pa.timestamp("us"))
        return rows.set_column(rows.schema.get_field_index("ts"), "ts", naive)
    return rows


def _in_order(paths: list[str], found: Iterable[str]) -> list[str]:
    """The ``found`` files in the order given, then any Spark named otherwise (none are lost)."""
    seen = set(found)
    return [p for p in paths if p in seen] + sorted(seen - set(paths))


def _is_spark_error(error: Exception) -> bool:
    module = type(error).__module__
    return module.startswith(("pyspark", "py4j"))


def _read_error(error: Exception, paths: list[str]) -> logfiles.LogReadError | None:
    """A failure to read one of our files, naming it; None when Spark's message names none of
    them (then it is no read error, and is raised as it is)."""
    message = str(error)
    named = next((p for p in paths if p in message or Path(p).name in message), None)
    if named is None:
        return None
    first = re.sub(r"\s+", " ", message.strip())[:_MESSAGE_CHARS]
    return logfiles.LogReadError(f"{named}: corrupt Parquet data, the file cannot be read: {first}")
