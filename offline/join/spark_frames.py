"""The Spark engine's DataFrame plans: log rows validated with the first failing reason, their
join to the tagged items, the per (user, rumor) and per (rumor, surface) aggregates, and the
merge of partial aggregates into the exposure state. Expressions only: nothing here collects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.vocab import ACTIONS, SURFACES
from offline.io.logs import LOG_COLUMNS
from offline.join.contracts import FLAGS, SHARE

# What the text form of a timestamp must start with (as in the DuckDB reference): Spark's cast
# alone would also read 'yesterday', 'epoch' or ' 2026-10-01', which are no ISO 8601 dates.
ISO_DATE = r"^\d{4}-\d{2}-\d{2}"
# The checks in the order they are applied: a row is rejected for the first that fails.
REASONS = (
    "null_or_empty_user_id",
    "null_or_empty_item_id",
    "null_ts",
    "unparseable_ts",
    "unknown_action",
    "unknown_surface",
)
FILE, ROW = "_file", "_row"
SURFACE_COLUMNS = tuple(f"rows_{s}" for s in SURFACES)


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


def read_schema(ts_is_text: bool) -> str:
    """The columns a log file is read with (projection; other columns are never decoded)."""
    ts = "string" if ts_is_text else "timestamp"
    return ", ".join(f"{c} {ts if c == 'ts' else 'string'}" for c in LOG_COLUMNS)


def _code(column: Any, vocabulary: tuple[str, ...]) -> Any:
    """Each value's index in ``vocabulary`` as a byte; null when unknown."""
    F = _functions()
    expr = None
    for i, value in enumerate(vocabulary):
        expr = (F if expr is None else expr).when(column == value, F.lit(i))
    return expr.cast("byte")


def _missing(column: Any) -> Any:
    return column.isNull() | (column == "")


def checked(session: Any, paths: list[str], ts_is_text: bool) -> Any:
    """The files' log rows with their file and row number, ts in UTC (``ts_utc``), action and
    surface as codes, and ``reason`` (null for a valid row)."""
    F = _functions()
    raw = session.read.schema(read_schema(ts_is_text)).parquet(*paths)
    ts = F.col("ts")
    parsed = F.when(ts.rlike(ISO_DATE), F.expr("try_cast(ts AS timestamp)"))
    ts_utc = parsed if ts_is_text else ts
    rows = raw.select(
        *LOG_COLUMNS,
        F.col("_metadata.file_path").alias(FILE),
        F.col("_metadata.row_index").alias(ROW),
        ts_utc.alias("ts_utc"),
        _code(F.col("action"), ACTIONS).alias("action_code"),
        _code(F.col("surface"), SURFACES).alias("surface_code"),
    )
    reason = (
        F.when(_missing(F.col("user_id")), "null_or_empty_user_id")
        .when(_missing(F.col("item_id")), "null_or_empty_item_id")
        .when(F.col("ts_utc").isNull(), "unparseable_ts" if ts_is_text else "null_ts")
        .when(F.col("action_code").isNull(), "unknown_action")
        .when(F.col("surface_code").isNull(), "unknown_surface")
    )
    return rows.withColumn("reason", reason)


def valid_rows(frame: Any, before: datetime | None = None) -> Any:
    """The valid rows of a ``checked`` frame (those before ``before`` when given: an instant,
    compared as one whatever the session's time zone), in the columns the join needs."""
    F = _functions()
    ok = F.col("reason").isNull()
    if before is not None:
        ok = ok & (F.col("ts_utc") < F.timestamp_seconds(F.lit(before.timestamp())))
    return frame.filter(ok).select(
        "user_id", "item_id", F.col("ts_utc").alias("ts"), "action_code", "surface_code"
    )


def pair_rows(valid: Any, tags: Any) -> Any:
    """Valid rows joined to their rumors (``tags``: item_id, rumor_id, tag_score, primary;
    broadcast) and
    aggregated per (user, rumor) in one pass: the PAIR_SCHEMA columns, ``kept`` (each row once
    however many rumors its item carries: on the item's primary rumor) and, per surface, the
    row count (SURFACE_COLUMNS) the per (rumor, surface) counts are summed from."""
    F = _functions()
    hits = valid.join(F.broadcast(tags), "item_id")
    share_ts = F.when(F.col("action_code") == SHARE, F.col("ts"))
    on = [F.col("surface_code") == i for i in range(len(SURFACES))]
    return hits.groupBy("user_id", "rumor_id").agg(
        F.count(F.lit(1)).alias("exposures"),
        F.min("ts").alias("first_ts"),
        F.max("ts").alias("last_ts"),
        F.max("action_code").alias("action_code"),
        *[F.bool_or(cond).alias(f) for cond, f in zip(on, FLAGS, strict=True)],
        F.min(share_ts).alias("first_share_ts"),
        F.max(share_ts).alias("last_share_ts"),
        F.max("tag_score").alias("tag_score"),
        F.count_if(F.col("primary")).alias("kept"),
        *[F.count_if(cond).alias(c) for cond, c in zip(on, SURFACE_COLUMNS, strict=True)],
    )


def _name(codes: Any, vocabulary: tuple[str, ...]) -> Any:
    """The vocabulary entry of each code (codes are valid indexes)."""
    F = _functions()
    return F.element_at(F.array(*[F.lit(v) for v in vocabulary]), codes.cast("int") + 1)


def merged_state(pairs: Any) -> Any:
    """STATE_SCHEMA columns of partial pair aggregates (PAIR_SCHEMA), sorted by (user, rumor)."""
    F = _functions()
    merged = groups_merged(pairs)
    mask = sum((F.when(F.col(f), 1 << i).otherwise(0) for i, f in enumerate(FLAGS)), F.lit(0)).cast(
        "short"
    )
    return merged.select(
        "user_id",
        "rumor_id",
        "exposures",
        "first_ts",
        "last_ts",
        _name(F.col("action_code"), ACTIONS).alias("strongest_action"),
        mask.alias("surface_mask"),
        (F.col("action_code") == SHARE).alias("shared"),
        "first_share_ts",
        "last_share_ts",
        "tag_score",
    ).orderBy("user_id", "rumor_id")


def groups_merged(pairs: Any) -> Any:
    """Partial pair aggregates combined so each (user, rumor) appears once."""
    F = _functions()
    return pairs.groupBy("user_id", "rumor_id").agg(
        F.sum("exposures").alias("exposures"),
        F.min("first_ts").alias("first_ts"),
        F.max("last_ts").alias("last_ts"),
        F.max("action_code").alias("action_code"),
        *[F.bool_or(f).alias(f) for f in FLAGS],
        F.min("first_share_ts").alias("first_share_ts"),
        F.max("last_share_ts").alias("last_share_ts"),
        F.max("tag_score").alias("tag_score"),
    )


def merged_counts(surfaces: Any) -> Any:
    """Per (rumor, surface) exposure counts summed, sorted by (rumor, surface)."""
    F = _functions()
    return (
        surfaces.groupBy("rumor_id", "surface")
        .agg(F.sum("exposures").alias("exposures"))
        .orderBy("rumor_id", "surface")
    )
