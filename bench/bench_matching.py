"""Offline matching throughput on real Weibo text, beside a baseline measured in the same run.

Run: ``python -m bench.bench_matching`` (``make bench-matching``); wrap it in ``flock`` on a
shared machine. Reads ``../shared/data/ced`` (or ``--data``) like ``make eval-matching`` and
prints the reason and exits 0 when it is absent. Library: the 30,000-rumor library of
``make eval-matching`` (the CED rumors plus real repost texts as further claims); texts: its
quotes and negatives (15,984 real posts and reposts, 14,922 distinct), ``--repeat`` times in
shuffled orders. The tagger scores each distinct text of a batch once (decision 0036), so the
texts/s count items tagged; ``--repeat 1`` gives the rate with few repeats.

Each round times, on the same texts:
- ``matcher x1``: ``offline.nightly.match.match_items`` in this process (tags and review
  tables included, as the nightly job pays them);
- ``matcher xN``: the same through ``MatchPool`` with ``--workers`` processes (its tables are
  checked equal to the in-process ones);
- ``bm25s x1``: ``bm25s`` (Lucene BM25, k1 = 1.5, b = 0.75, its batch ``retrieve`` with
  k = 1, one thread) over ``rjieba`` words of the same folded texts, tokenising included:
  the baseline the ratios are against (a standard, vectorised retriever).
Besides wall-clock texts/s, each method's texts per CPU-second (this process, or the
workers' own CPU time read from ``/proc``) says what the code does per core whatever else
the machine runs; the load average is printed with the numbers. The median round is printed.
Writes ``bench/out/bench_matching.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.eval_matching import DATA, SEED, big_library, load
from offline.nightly.match import MatchPool, make_matcher, match_items

OUT = Path(__file__).parent / "out" / "bench_matching.json"


def timed(fn, pids: list[int] | None = None) -> tuple[float, float, object]:
    """Wall seconds ``fn()`` took, the CPU seconds it cost (this process, or the processes
    ``pids``), and its result."""
    c0 = cpu_seconds(pids)
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, cpu_seconds(pids) - c0, out


def cpu_seconds(pids: list[int] | None) -> float:
    """User + system CPU seconds of this process, or of the processes ``pids`` (``/proc``)."""
    if pids is None:
        return time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def words(text: str) -> list[str]:
    """rjieba words of the NFKC, case-folded text, spaces and punctuation dropped."""
    import rjieba

    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return [w for w in rjieba.cut(folded) if any(c.isalnum() for c in w)]


class Bm25Baseline:
    """bm25s over rjieba words; ``top1`` tokenises and retrieves the best document."""

    def __init__(self, claims: list[str]) -> None:
        import bm25s

        self.model = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        self.model.index([words(c) for c in claims], show_progress=False)
        self.vocab = self.model.vocab_dict

    def top1(self, texts: list[str]) -> np.ndarray:
        """Best document per text (-1 when no word of it is indexed)."""
        tokens = [[w for w in words(t) if w in self.vocab] for t in texts]
        some = [i for i, t in enumerate(tokens) if t]
        best = np.full(len(texts), -1, dtype=np.int64)
        docs, _ = self.model.retrieve(
            [tokens[i] for i in some], k=1, show_progress=False, n_threads=1
        )
        best[some] = docs[:, 0]
        return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 also when the data folder is absent (skipped, with the reason)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not (args.data / "posts.parquet").exists():
        print(f"bench-matching: skipped, no CED data at {args.data}")
        return 0
    rng = np.random.default_rng(SEED)
    d = load(args.data, rng)
    library = big_library(d["library"], d["filler"], rng)
    base = [q[0] for q in d["queries"]]
    texts = [base[i] for _ in range(args.repeat) for i in rng.permutation(len(base)).tolist()]
    items = pa.table({"item_id": [f"i{i}" for i in range(len(texts))], "text": texts})
    build_s, _, matcher = timed(lambda: make_matcher(library))
    distinct = len(set(texts))  # the tagger scores each distinct text of a batch once
    print(
        f"library {len(library)} rumors (index built in {build_s:.1f}s); "
        f"texts {len(texts)} ({distinct} distinct)"
    )
    pool = MatchPool(matcher, args.workers)
    pids = list(pool.executor._processes)  # the worker processes, for their CPU time
    baseline = Bm25Baseline([e.claim for e in library])
    rounds: list[dict[str, tuple[float, float]]] = []
    try:
        match_items(items.slice(0, 2000), matcher)  # warm the caches of this process
        baseline.top1(texts[:2000])
        for _ in range(args.rounds):
            one_s, one_cpu, one = timed(lambda: match_items(items, matcher))
            many_s, many_cpu, many = timed(lambda: match_items(items, matcher, pool=pool), pids)
            if not all(a.equals(b) for a, b in zip(one, many, strict=True)):  # type: ignore[arg-type]
                print("bench-matching: the pool's tables differ from the in-process ones")
                return 1
            base_s, base_cpu, _ = timed(lambda: baseline.top1(texts))
            rounds.append(
                {
                    "matcher_x1": (one_s, one_cpu),
                    "matcher_pool": (many_s, many_cpu),
                    "bm25s_x1": (base_s, base_cpu),
                }
            )
    finally:
        pool.close()
    keys = ("matcher_x1", "matcher_pool", "bm25s_x1")
    median = {k: float(np.median([r[k][0] for r in rounds])) for k in keys}
    cpu = {k: float(np.median([r[k][1] for r in rounds])) for k in keys}
    rate = {k: len(texts) / median[k] for k in keys}
    per_cpu = {k: len(texts) / max(cpu[k], 1e-9) for k in keys}
    load_avg = os.getloadavg()
    print("load average " + " ".join(f"{x:.1f}" for x in load_avg), f"on {os.cpu_count()} cores")
    print(f"{'method':<12} {'texts/s':>9} {'x bm25s':>8} {'texts/cpu-s':>12} {'x bm25s':>8}")
    labels = {"matcher_x1": "matcher x1", "matcher_pool": f"matcher x{args.workers}"}
    for key in keys:
        ratio, cpu_ratio = rate[key] / rate["bm25s_x1"], per_cpu[key] / per_cpu["bm25s_x1"]
        print(
            f"{labels.get(key, 'bm25s x1'):<12} {rate[key]:>9,.0f} {ratio:>8.2f} "
            f"{per_cpu[key]:>12,.0f} {cpu_ratio:>8.2f}"
        )
    print(f"pool speed-up over one process: {rate['matcher_pool'] / rate['matcher_x1']:.2f}")
    result = {
        "library_rumors": len(library),
        "texts": len(texts),
        "distinct_texts": distinct,
        "workers": args.workers,
        "build_s": round(build_s, 2),
        "load_average": [round(x, 2) for x in load_avg],
        "rounds_wall_cpu_s": [{k: [round(x, 3) for x in v] for k, v in r.items()} for r in rounds],
        "texts_per_s": {k: round(v) for k, v in rate.items()},
        "texts_per_cpu_s": {k: round(v) for k, v in per_cpu.items()},
        "ratio_to_bm25s": {k: round(v / rate["bm25s_x1"], 2) for k, v in rate.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
