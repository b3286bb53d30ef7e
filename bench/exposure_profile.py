"""Where the local engine spends its time on one point of the exposure-join benchmark: each
stage alone on one thread (decode, screen, join and aggregate, merge), then the whole join.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.common import emit, format_table, peak_rss_mb, run_child
from bench.exposure_engines import SCRIPT, limit_arrow_threads, log_files


def profile_ours(world: Path, tags: Path) -> dict[str, float]:
    """Stage timings of ours. The join overlaps the stages on a pool of 2, so its total is less
    than their sum."""
    from offline.io import logs as logfiles
    from offline.io.catalog import load_tags
    from offline.join.contracts import prepare_tags
    from offline.join.engine import join_exposures
    from offline.join.layout import dictionary_ids
    from offline.join.local import LocalEngine
    from offline.join.screen import screen_batch
    from offline.join.tag_index import TagIndex, join_candidates, join_known

    stages: dict[str, float] = {}

    def stage(name: str, started: float) -> float:
        now = time.perf_counter()
        stages[name] = now - started
        return now

    started = time.perf_counter()
    index = TagIndex.build(prepare_tags(load_tags(tags)))
    started = stage("tag index", started)
    checked = logfiles.check_files(log_files(world))
    batches = [
        lb
        for path, is_text in checked
        for lb in logfiles.read_batches(
            path, is_text, batch_size=1 << 20, dictionaries=dictionary_ids(path)
        )
    ]
    started = stage("decode (1 thread)", started)
    screened = [screen_batch(lb, index) for lb in batches]
    started = stage("screen batches (validate, dictionary test or C prefilter; 1 thread)", started)
    del batches
    candidates = [r.candidates for r in screened if r.candidates is not None]
    hits = [r.hits for r in screened if r.hits is not None]
    partials = []
    if candidates:
        partials.append(join_candidates(pa.concat_tables(candidates), index)[1])
    if hits:
        partials.append(join_known(pa.concat_tables(hits), index)[1])
    started = stage("join and aggregate hits (1 thread)", started)
    LocalEngine().merge_state([p for p in partials if p is not None])
    stage("merge and finish state (1 thread)", started)
    started = time.perf_counter()
    join_exposures(world / "exposures", load_tags(tags))
    stage("total (the join, 2 threads)", started)
    return {k: round(v, 3) for k, v in stages.items()}


def profile_child(world: Path, tags: Path) -> int:
    """Print ours' stage timings as one JSON line."""
    limit_arrow_threads()
    emit({"engine": "profile", "stages": profile_ours(world, tags), "peak_rss_mb": peak_rss_mb()})
    return 0


def profile(world: Path, tags: Path, repeat: int) -> dict[str, Any]:
    """The stage timings of ours' best (fastest total) of ``repeat`` profiled runs."""
    cmd = [sys.executable, str(SCRIPT), "--engine", "profile", "--world", str(world)]
    runs = [run_child([*cmd, "--tags", str(tags)]).report for _ in range(repeat)]
    return min(runs, key=lambda r: r["stages"]["total (the join, 2 threads)"])


def print_profile(label: str, prof: dict[str, Any]) -> None:
    """The stage table of a profile run."""
    stages = prof["stages"]
    total = stages["total (the join, 2 threads)"]
    rows = [[k, v, f"{100 * v / total:.1f}%"] for k, v in stages.items()]
    print(f"\nours, stage by stage ({label}, fastest of the profiled runs):")
    print(format_table(["stage", "seconds", "% of total"], rows))
