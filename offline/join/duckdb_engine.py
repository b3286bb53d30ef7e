"""The DuckDB reference engine: the same scan and merge as the local engine, written as plain
SQL, so the contract suite has an independent implementation to compare every engine against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa

from domain.vocab import ACTIONS, SURFACES
from offline.join.contracts import (
    FLAGS,
    PAIR_SCHEMA,
    SHARE,
    STATE_SCHEMA,
    SURFACE_COUNT_SCHEMA,
    TAG_PAIR_SCHEMA,
    ExposureState,
    JoinSummary,
    Partial,
    RejectSink,
)
from offline.join.engine import JoinEngine

_LOG_COLUMNS = ("user_id", "item_id", "ts", "surface", "action")
# What the text form of a timestamp must start with; DuckDB alone would also read 'epoch' or
# 'infinity', which are no ISO 8601 dates.
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}"


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise RuntimeError(
            "the duckdb join engine needs the duckdb package: pip install -e '.[dev]'"
        ) from None
    return duckdb


def _text(value: str) -> str:
    """A quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _code(column: str, vocabulary: tuple[str, ...]) -> str:
    """Each value's index in ``vocabulary`` (NULL when unknown)."""
    whens = " ".join(f"WHEN {_text(v)} THEN {i}" for i, v in enumerate(vocabulary))
    return f"(CASE {column} {whens} END)::TINYINT"


def _names(vocabulary: tuple[str, ...]) -> str:
    return "[" + ", ".join(_text(v) for v in vocabulary) + "]"


def _checked_sql(ts_is_text: bool) -> str:
    """One file's rows with ts in UTC, action/surface as codes, and why each is rejected."""
    ts = (
        f"CASE WHEN regexp_matches(ts, '{_ISO_DATE}') THEN TRY_CAST(ts AS TIMESTAMPTZ) END"
        if ts_is_text
        else "ts::TIMESTAMPTZ"
    )
    bad_ts = "unparseable_ts" if ts_is_text else "null_ts"
    return f"""
    WITH raw AS (
        SELECT *, {ts} AS ts_utc, {_code("action", ACTIONS)} AS action_code,
               {_code("surface", SURFACES)} AS surface_code
        FROM read_parquet($path, file_row_number = true)
    )
    SELECT *, CASE
        WHEN user_id IS NULL OR user_id = '' THEN 'null_or_empty_user_id'
        WHEN item_id IS NULL OR item_id = '' THEN 'null_or_empty_item_id'
        WHEN ts_utc IS NULL THEN '{bad_ts}'
        WHEN action_code IS NULL THEN 'unknown_action'
        WHEN surface_code IS NULL THEN 'unknown_surface'
    END AS reason
    FROM raw
    """


_FLAG_AGGREGATES = ", ".join(f"bool_or(surface_code = {i}) AS {f}" for i, f in enumerate(FLAGS))
_PAIRS_SQL = f"""
    SELECT v.user_id, t.rumor_id, count(*) AS exposures, min(v.ts) AS first_ts,
           max(v.ts) AS last_ts, max(v.action_code) AS action_code, {_FLAG_AGGREGATES},
           min(v.ts) FILTER (WHERE v.action_code = {SHARE}) AS first_share_ts,
           max(v.ts) FILTER (WHERE v.action_code = {SHARE}) AS last_share_ts,
           max(t.tag_score) AS tag_score
    FROM valid AS v JOIN tags AS t USING (item_id)
    GROUP BY v.user_id, t.rumor_id
"""
_SURFACES_SQL = f"""
    SELECT t.rumor_id, ({_names(SURFACES)})[v.surface_code + 1] AS surface, count(*) AS exposures
    FROM valid AS v JOIN tags AS t USING (item_id)
    GROUP BY t.rumor_id, v.surface_code
"""
_MASK = " + ".join(
    f"(CASE WHEN bool_or({f}) THEN {1 << i} ELSE 0 END)" for i, f in enumerate(FLAGS)
)
_STATE_SQL = f"""
    SELECT user_id, rumor_id, sum(exposures) AS exposures, min(first_ts) AS first_ts,
           max(last_ts) AS last_ts, ({_names(ACTIONS)})[max(action_code) + 1] AS strongest_action,
           ({_MASK}) AS surface_mask, max(action_code) = {SHARE} AS shared,
           min(first_share_ts) AS first_share_ts, max(last_share_ts) AS last_share_ts,
           max(tag_score) AS tag_score
    FROM pairs WHERE {{keep}}
    GROUP BY user_id, rumor_id
    ORDER BY user_id, rumor_id
"""
_COUNTS_SQL = """
    SELECT rumor_id, surface, sum(exposures) AS exposures FROM surfaces WHERE {keep}
    GROUP BY rumor_id, surface ORDER BY rumor_id, surface
"""


class DuckDBEngine(JoinEngine):
    """Each call runs in a fresh in-memory DuckDB database on ``threads`` threads."""

    name = "duckdb"

    def __init__(self, *, threads: int = 2) -> None:
        self._duckdb = _duckdb()
        self.threads = threads

    def _connect(self) -> Any:
        con = self._duckdb.connect()
        con.execute(f"SET threads = {int(self.threads)}")
        con.execute("SET TimeZone = 'UTC'")
        return con

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
        con = self._connect()
        try:
            con.register("tags", tags.select(TAG_PAIR_SCHEMA.names).cast(TAG_PAIR_SCHEMA))
            con.execute(
                "CREATE TEMP TABLE valid (user_id VARCHAR, item_id VARCHAR, ts TIMESTAMPTZ, "
                "action_code TINYINT, surface_code TINYINT)"
            )
            for path, ts_is_text in files:
                self._check_file(con, path, ts_is_text, summary, sink, on_batch, before)
            [(kept,)] = con.sql(
                "SELECT count(*) FROM valid WHERE item_id IN (SELECT item_id FROM tags)"
            ).fetchall()
            summary.rows_kept += kept
            pairs = con.sql(_PAIRS_SQL).to_arrow_table()
            surfaces = con.sql(_SURFACES_SQL).to_arrow_table()
        finally:
            con.close()
        return Partial(pairs.cast(PAIR_SCHEMA), surfaces.cast(SURFACE_COUNT_SCHEMA))

    @staticmethod
    def _check_file(
        con: Any,
        path: str,
        ts_is_text: bool,
        summary: JoinSummary,
        sink: RejectSink | None,
        on_batch: Callable[[int], None] | None,
        before: datetime | None = None,
    ) -> None:
        """Validate one file into ``valid`` (its rows before ``before`` when given); its
        rejects are counted and handed to ``sink``."""
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE checked AS {_checked_sql(ts_is_text)}", {"path": path}
        )
        [(rows,)] = con.sql("SELECT count(*) FROM checked").fetchall()
        summary.rows_read += rows
        by_reason = con.sql(
            "SELECT reason, count(*) FROM checked WHERE reason IS NOT NULL GROUP BY reason "
            "ORDER BY reason"
        ).fetchall()
        columns = ", ".join(_LOG_COLUMNS)
        for reason, n in by_reason:
            summary.reject(reason, n)
            if sink is not None:
                rejected = con.sql(
                    f"SELECT {columns} FROM checked WHERE reason = $reason "
                    "ORDER BY file_row_number",
                    params={"reason": reason},
                ).to_arrow_table()
                sink(rejected, reason, path)
        cut = "" if before is None else f" AND ts_utc < to_timestamp({before.timestamp()!r})"
        con.execute(
            "INSERT INTO valid SELECT user_id, item_id, ts_utc, action_code, surface_code "
            f"FROM checked WHERE reason IS NULL{cut}"
        )
        if on_batch:
            on_batch(rows)

    def merge_state(
        self, partials: Iterable[Partial], confirmed: set[str] | None = None
    ) -> ExposureState:
        con = self._connect()
        try:
            con.register("pair_schema", PAIR_SCHEMA.empty_table())
            con.register("surface_schema", SURFACE_COUNT_SCHEMA.empty_table())
            con.execute("CREATE TEMP TABLE pairs AS SELECT * FROM pair_schema")
            con.execute("CREATE TEMP TABLE surfaces AS SELECT * FROM surface_schema")
            for partial in partials:
                con.register("part_pairs", partial.pairs.select(PAIR_SCHEMA.names))
                con.register("part_surfaces", partial.surfaces.select(SURFACE_COUNT_SCHEMA.names))
                con.execute("INSERT INTO pairs SELECT * FROM part_pairs")
                con.execute("INSERT INTO surfaces SELECT * FROM part_surfaces")
            keep = "true"
            if confirmed is not None:
                rumors = pa.array(sorted(confirmed), pa.string())
                con.register("confirmed", pa.table({"rumor_id": rumors}))
                keep = "rumor_id IN (SELECT rumor_id FROM confirmed)"
            state = con.sql(_STATE_SQL.format(keep=keep)).to_arrow_table()
            counts = con.sql(_COUNTS_SQL.format(keep=keep)).to_arrow_table()
        finally:
            con.close()
        return ExposureState(state.cast(STATE_SCHEMA), counts.cast(SURFACE_COUNT_SCHEMA))
