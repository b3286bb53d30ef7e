"""Peak RSS and time of packing the ranker's logits of every prebunk pick at materialization
(``SnapshotWriter.write_models``): a batch of users at a time (what the writer does) against one
call over every user (what it did before), each in its own process, same seeded picks.

    .venv/bin/python bench/bench_prebunk_logits.py [--users 2000000 --rumors 3000 --batch 2000]

The picks are a PrebunkTable as training hands it (1–4 picks a user); the model scores 50,000
users' factors and the rest as cold users. Both ways must pack the same bytes (a digest).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    command_line,
    current_rss_mb,
    emit,
    format_table,
    machine,
    run_child,
)


def _setup(users: int, rumors: int) -> tuple:
    """Seeded picks, a feed model with two options a rumor and its pair scorer."""
    from domain.models import FeedModel
    from feature_store.models import PairScorer
    from offline.models.prebunk_table import PrebunkTable

    rng = np.random.default_rng(1)
    ids = [f"u{i:08d}" for i in range(users)]
    bounds = np.concatenate([[0], np.cumsum(rng.integers(1, 5, users))])
    codes = rng.integers(0, rumors, bounds[-1]).astype(np.int32)
    names = [f"r{i:05d}" for i in range(rumors)]
    table = PrebunkTable(ids, bounds, names, codes, rng.random(bounds[-1]).astype(np.float32))
    options = {r: [f"d{r}-0", f"d{r}-1"] for r in names}
    debunks = [d for r in names for d in options[r]]
    rows = rng.random((len(debunks), 8), dtype=np.float32)
    model = FeedModel({d: i for i, d in enumerate(debunks)}, rows, np.zeros(8, np.float32), 0.9)
    factors = {u: rng.random(8, dtype=np.float32) for u in ids[:50_000]}
    return ids, table, PairScorer(model, factors, options)


def child(users: int, rumors: int, batch: int) -> int:
    """Pack every user's logits ``batch`` users a call; one JSON line."""
    from feature_store.snapshots import _prebunk_logits

    ids, table, scorer = _setup(users, rumors)
    before = current_rss_mb()
    digest = hashlib.sha256()
    started = time.perf_counter()
    for lo in range(0, len(ids), batch):
        packed = _prebunk_logits(scorer, table, ids[lo : lo + batch])
        for user in ids[lo : lo + batch]:
            digest.update(packed.get(user, b"-"))
    emit({"batch": batch, "picks": table.pairs, "seconds": round(time.perf_counter() - started, 1),
          "rss_before_mb": round(before), "digest": digest.hexdigest()[:16]})  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=2_000_000)
    p.add_argument("--rumors", type=int, default=3_000)
    p.add_argument("--batch", type=int, default=2_000, help="the writer's batch_users")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args.users, args.rumors, args.child)
    runs = {}
    for name, batch in (("per batch", args.batch), ("all at once", args.users)):
        cmd = [sys.executable, __file__, "--users", str(args.users), "--rumors",
               str(args.rumors), "--child", str(batch)]  # fmt: skip
        res = run_child(cmd)
        runs[name] = {**res.report, "peak_rss_mb": round(res.maxrss_mb)}
    rows = [[n, r["batch"], r["picks"], r["seconds"], r["rss_before_mb"], r["peak_rss_mb"],
             r["peak_rss_mb"] - r["rss_before_mb"]] for n, r in runs.items()]  # fmt: skip
    print(format_table(["way", "users a call", "picks", "seconds", "RSS before MB",
                        "peak RSS MB", "added MB"], rows))  # fmt: skip
    same = len({r["digest"] for r in runs.values()}) == 1
    added = {n: r["peak_rss_mb"] - r["rss_before_mb"] for n, r in runs.items()}
    b, a = runs["per batch"], runs["all at once"]
    ratio = added["per batch"] / max(1, added["all at once"])
    print(f"added peak per batch / all at once: {ratio:.3f}; "
          f"time: {b['seconds'] / a['seconds']:.2f}; same bytes: {same}")  # fmt: skip
    print(json.dumps({"command": command_line(), "machine": machine(), "same_bytes": same,
                      "runs": runs}))  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
