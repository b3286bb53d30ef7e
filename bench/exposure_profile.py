"""Where the local engine spends its time on one point of the exposure-join benchmark: each
stage alone on one thread, as this thread's CPU time (steadier than wall time on a shared
machine): the decode of each log column, screening, the join and aggregation of the hits, the
merge; then the whole join on 2 threads (wall time).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.common import emit, format_table, peak_rss_mb, run_child
from bench.exposure_engines import SCRIPT, limit_arrow_threads, log_files

TOTAL = "total (the join, 2 threads, wall)"


# The selective decoder's stage (decision 0054): what the join runs for the row groups it reads.
SELECTIVE = "selective decode and screen (item_id first, other columns at hits only)"


def profile_ours(world: Path, tags: Path) -> dict[str, float]:
    """Stage timings of ours. The join overlaps the stages on a pool of 2, so its total is less
    than their sum."""
    from offline.io import logs as logfiles
    from offline.io.catalog import load_tags
    from offline.join import selective
    from offline.join.contracts import prepare_tags
    from offline.join.engine import join_exposures
    from offline.join.layout import dictionary_ids
    from offline.join.local import LocalEngine
    from offline.join.screen import BatchResult, screen_batch
    from offline.join.tag_index import TagIndex, join_candidates, join_known

    stages: dict[str, float] = {}

    def stage(name: str, started: float) -> float:
        now = time.thread_time()
        stages[name] = stages.get(name, 0.0) + now - started
        return now

    started = time.thread_time()
    index = TagIndex.build(prepare_tags(load_tags(tags)))
    started = stage("tag index", started)
    checked = logfiles.check_files(log_files(world))
    screened = []
    for path, is_text in checked:
        dictionaries = dictionary_ids(path)
        started = _decode_columns(path, dictionaries, stage)
        rest: list[int] | None = None
        if selective.available() and not is_text:
            done, rest = selective.screen_groups(path, None, index, None)
            screened.extend(BatchResult(rows=n, hits=hits) for n, hits in done)
            started = stage(SELECTIVE, started)
            if rest == []:
                continue
        for lb in logfiles.read_batches(
            path, is_text, batch_size=1 << 20, row_groups=rest, dictionaries=dictionaries
        ):  # fmt: skip
            started = stage("decode all columns together (read_batches)", started)
            screened.append(screen_batch(lb, index))
            started = stage("screen (validate, dictionary test or C prefilter)", started)
    candidates = [r.candidates for r in screened if r.candidates is not None]
    hits = [r.hits for r in screened if r.hits is not None]
    partials = []
    if candidates:
        partials.append(join_candidates(pa.concat_tables(candidates), index)[1])
    if hits:
        partials.append(join_known(pa.concat_tables(hits), index)[1])
    started = stage("join and aggregate the hits", started)
    LocalEngine().merge_state([p for p in partials if p is not None])
    stage("merge and finish state", started)
    started = time.perf_counter()
    join_exposures(world / "exposures", load_tags(tags))
    stages[TOTAL] = time.perf_counter() - started
    return {k: round(v, 3) for k, v in stages.items()}


def _decode_columns(path: str, dictionaries: tuple[str, ...], stage: Any) -> float:
    """Decode each log column of ``path`` alone, row group by row group, as the join reads it
    (ids as dictionaries when the footer allows); one stage per column and encoding."""
    import pyarrow.parquet as pq

    from offline.io.logs import DICTIONARY_COLUMNS, LOG_COLUMNS

    wanted = [*DICTIONARY_COLUMNS, *dictionaries]
    reader = pq.ParquetFile(path, read_dictionary=wanted, pre_buffer=False)
    started = time.thread_time()
    for group in range(reader.num_row_groups):
        for column in LOG_COLUMNS:
            reader.read_row_group(group, columns=[column], use_threads=False)
            read_as = "dictionary" if column in wanted else "plain"
            started = stage(f"decode {column} alone (as {read_as})", started)
    return started


def profile_child(world: Path, tags: Path) -> int:
    """Print ours' stage timings as one JSON line."""
    limit_arrow_threads()
    emit({"engine": "profile", "stages": profile_ours(world, tags), "peak_rss_mb": peak_rss_mb()})
    return 0


def profile(world: Path, tags: Path, repeat: int) -> dict[str, Any]:
    """The stage timings of ours' best (fastest total) of ``repeat`` profiled runs."""
    cmd = [sys.executable, str(SCRIPT), "--engine", "profile", "--world", str(world)]
    runs = [run_child([*cmd, "--tags", str(tags)]).report for _ in range(repeat)]
    return min(runs, key=lambda r: r["stages"][TOTAL])


def print_profile(label: str, prof: dict[str, Any]) -> None:
    """The stage table of a profile run."""
    stages = prof["stages"]
    rows = [[k, v] for k, v in stages.items()]
    print(f"\nours, stage by stage ({label}, fastest of the profiled runs; one thread's CPU s):")
    print(format_table(["stage", "seconds"], rows))
