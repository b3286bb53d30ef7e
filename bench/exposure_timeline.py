"""Where `write_exposures`' wall time goes with both threads at work, phase by phase: the local
engine runs as the sweep runs it (2 workers, Arrow on 2 threads) while its main steps are timed
on whichever thread runs them (wall and that thread's CPU). A profile, not a benchmark; run it
under the lock all the same.

    flock /tmp/bench.lock .venv/bin/python bench/exposure_timeline.py pyarrow 0.1 \
        --world bench/out/worlds/sweep-1000000-10-20000000-1

It prints, for the scan (until the last join task ends) and for the end (the reduces and the
output write), each step's wall seconds per thread and how busy the two cores were.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (thread name, step, wall start, wall end, thread CPU seconds)
Span = tuple[str, str, float, float, float]
SPANS: list[Span] = []
_LOCK = threading.Lock()


def traced(step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` recording one span per call (nested calls record their own too)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            span = (threading.current_thread().name, step, start, time.perf_counter(),
                    time.thread_time() - cpu)  # fmt: skip
            with _LOCK:
                SPANS.append(span)

    return run


def instrument() -> None:
    """Wrap the engine's steps (the modules' own names, so the engine calls the wrappers)."""
    import pyarrow.parquet as pq

    import offline.join.buckets as buckets
    import offline.join.fold as fold
    import offline.join.local as local

    local.screen_file = traced("screen", local.screen_file)  # type: ignore[assignment]
    local._cut = traced("join+aggregate+cut", local._cut)  # type: ignore[assignment]
    for name in ("_reduced", "_write", "reduced", "spill_all"):
        if hasattr(buckets.UserBuckets, name):
            step = {"_reduced": "read+reduce group", "_write": "spill write"}.get(name, name)
            setattr(buckets.UserBuckets, name, traced(step, getattr(buckets.UserBuckets, name)))
    buckets._reduce_tables = traced("reduce_pairs", buckets._reduce_tables)  # type: ignore[assignment]
    fold.finish_state = traced("finish_state", fold.finish_state)  # type: ignore[assignment]
    pq.ParquetWriter.write_table = traced("write row group", pq.ParquetWriter.write_table)  # type: ignore[method-assign]
    import offline.io.column_pieces as pieces  # the row groups' columns encoded on the pool

    pieces._encoded = traced("encode column", pieces._encoded)  # type: ignore[assignment]
    pieces.ColumnPieceWriter._copy = traced("copy row group", pieces.ColumnPieceWriter._copy)  # type: ignore[method-assign]
    Future.result = traced("wait", Future.result)  # type: ignore[method-assign]


class CpuSampler(threading.Thread):
    """The process's CPU seconds (every thread) sampled every 5 ms, to split it by phase."""

    def __init__(self) -> None:
        super().__init__(name="sampler", daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            self.samples.append((time.perf_counter(), time.process_time()))

    def at(self, moment: float) -> float:
        """CPU seconds at the last sample before ``moment``."""
        return max((c for t, c in self.samples if t <= moment), default=self.samples[0][1])


def report(
    spans: list[Span], started: float, scan_end: float, ended: float, cpu: CpuSampler
) -> None:
    """Per phase: each step's wall seconds by thread (nested steps counted in their own rows
    too), and how many cores were busy."""
    threads = sorted({s[0] for s in spans}, key=lambda t: (t != "MainThread", t))
    for phase, lo, hi in (("scan", started, scan_end), ("end", scan_end, ended)):
        used = cpu.at(hi) - cpu.at(lo)
        print(f"\n{phase}: {hi - lo:.3f} s wall, {used:.3f} s CPU ({used / (hi - lo):.2f} cores)")
        table: dict[str, dict[str, list[float]]] = defaultdict(dict)
        for thread, step, a, b, spent in spans:
            if lo <= a < hi:
                wall_cpu = table[step].setdefault(thread, [0.0, 0.0])
                wall_cpu[0] += b - a
                wall_cpu[1] += spent
        print("  " + f"{'step (wall / CPU s)':22s}" + "".join(f"{t[-12:]:>14s}" for t in threads))
        for step, by in sorted(table.items()):
            cells = [by.get(t, [0.0, 0.0]) for t in threads]
            row = "".join(f"{w:7.3f}/{c:.3f}"[:14].rjust(14) for w, c in cells)
            print("  " + f"{step:22s}" + row)


def main() -> None:
    """Time one (layout, hit rate) point of a sweep world."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("layout", help="a layout folder of the sweep world, e.g. pyarrow")
    p.add_argument("rate", help="a tag file's hit rate, e.g. 0.1 for tags-0.1.parquet")
    p.add_argument("--world", type=Path, required=True)
    args = p.parse_args()

    import pyarrow as pa

    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    instrument()
    import resource

    from offline.io.catalog import load_tags
    from offline.join.engine import write_exposures
    from offline.join.local import LocalEngine

    tags = load_tags(args.world / f"tags-{args.rate}.parquet")
    sampler = CpuSampler()
    sampler.start()
    with tempfile.TemporaryDirectory() as out:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        write_exposures(args.world / args.layout / "exposures", tags, Path(out) / "x.parquet",
                        engine=LocalEngine(work_dir=out))  # fmt: skip
        ended = time.perf_counter()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    spans = [s for s in SPANS if s[1] != "wait" or s[0] == "MainThread"]
    scan_end = max((s[3] for s in spans if s[1] == "join+aggregate+cut"), default=started)
    print(f"{args.layout} {args.rate}: wall {ended - started:.3f} s, process CPU {cpu:.3f} s "
          f"({cpu / (ended - started):.2f} cores busy)")  # fmt: skip
    sampler.stop.set()
    screens = [s for s in spans if s[1] == "screen"]
    if screens:
        print(
            f"first screen starts at {min(s[2] for s in screens) - started:.3f} s, the last "
            f"ends at {max(s[3] for s in screens) - started:.3f} s; {len(screens)} screens"
        )
    report(spans, started, scan_end, ended, sampler)


if __name__ == "__main__":
    main()
