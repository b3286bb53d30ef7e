"""The nightly's watermark: the time up to which a snapshot counts log rows, on an hour boundary.

A snapshot counts the log rows before its watermark and only those; live buckets count from it
on (``domain.exposure_days``), so a run over a day the lake has not finished (today's partition
read at 09:37) leaves the rest of the day to the live layer instead of hiding it. The rule:

- a run date whose end lies ``settle_s`` (the log shipper's lag allowance) or more in the past
  is complete: the watermark is the next midnight, whatever its last row (a quiet last hour is
  no gap);
- otherwise the lake is trusted up to the earlier of the clock less ``settle_s`` and its own
  last row of that day, rounded down to the hour: a shipper running late, or a clock running
  ahead, moves the watermark back, never forward;
- the run date's partition holding no row leaves the whole day to the live layer.

The same files and clock give the same watermark, so a re-run is idempotent; a partition
scanned under another watermark is scanned again (``offline.nightly.state``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.exposure_days import BUCKET_S, DAY_S, day_end
from offline.io import logs as logfiles
from offline.join.engine import JoinEngine, is_remote
from offline.join.screen import utc_timestamps

DEFAULT_SETTLE_S = 900  # 15 minutes: rows younger than this may still be on their way


def watermark(run_date: date, read_at: float, last_ts: float | None, settle_s: int) -> int:
    """The watermark (unix s, a multiple of BUCKET_S) of a run over ``run_date`` started at
    ``read_at`` whose run-date partition's last row is at ``last_ts`` (None: no row)."""
    end = day_end(run_date)
    start = end - DAY_S
    trusted = read_at - settle_s
    if trusted >= end:
        return end
    if last_ts is None:
        return start
    bound = int(min(trusted, last_ts + 1))
    return max(start, min(end, bound - bound % BUCKET_S))


def last_row_ts(logs: Path | str, run_date: date, engine: JoinEngine) -> float | None:
    """The latest valid ``ts`` in the ``run_date`` partition (unix s; None when it holds no row
    or is missing). Only the ts column is read; a remote partition is not opened here (the
    caller then trusts the clock alone)."""
    dt = run_date.isoformat()
    if dt not in engine.log_partitions(logs):
        return None
    _, files = engine.log_files(logs, [dt])
    latest: float | None = None
    for path, is_text in logfiles.check_files([Path(f) for f in files]):
        column = pq.read_table(path, columns=["ts"]).column("ts").combine_chunks()
        top = pc.max(utc_timestamps(column, is_text)).as_py()
        if top is not None:
            at = top.timestamp() if isinstance(top, datetime) else float(top)
            latest = at if latest is None else max(latest, at)
    return latest


def run_watermark(
    logs: Path | str, run_date: date, engine: JoinEngine, *, read_at: float, settle_s: int
) -> int:
    """The watermark of this run: from its clock and, for local logs, the run date's last row
    (not read when the clock alone shows the day over: the usual night)."""
    if read_at - settle_s >= day_end(run_date):
        return day_end(run_date)
    if is_remote(logs):
        return watermark(run_date, read_at, read_at, settle_s)
    return watermark(run_date, read_at, last_row_ts(logs, run_date, engine), settle_s)


def iso(ts: int) -> str:
    """A watermark as ISO 8601 UTC text, for summaries and logs."""
    return datetime.fromtimestamp(ts, UTC).isoformat()
