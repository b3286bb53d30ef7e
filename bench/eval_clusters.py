"""Claim clusters on real Weibo data (CED): how many clusters the 1,538 rumor posts form at each
Jaccard threshold, and how many clusters are bridged (two members sharing < 3% of their grams:
a post quoting two stories joined them).

Run: ``python -m bench.eval_clusters`` (reads ``../shared/data/ced`` relative to the repository
root, or ``--data``; prints the reason and exits 0 when it is absent). Prints a table and writes
``bench/out/eval_clusters.json``. The shipped threshold (``ranking.clusters.CLUSTER_JACCARD``)
is the lowest round value with no bridged cluster; see docs/decisions/0010-claim-clusters.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ranking.clusters import (
    CLUSTER_JACCARD,
    claim_grams,
    cluster_claims,
    jaccard,
    members,
    summarize,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ced"
OUT = Path(__file__).parent / "out" / "eval_clusters.json"
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.32, 0.35, 0.4, 0.5, 0.6, 0.7)
BRIDGE = 0.03


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    posts = args.data / "posts.parquet"
    if not posts.exists():
        print(f"{posts} not found: nothing to evaluate")
        return 0
    table = pq.read_table(posts, columns=["post_id", "label", "text"])
    rumors = table.filter(pc.equal(table["label"], "rumor"))
    claims = dict(zip(rumors["post_id"].to_pylist(), rumors["text"].to_pylist(), strict=True))
    grams = {k: claim_grams(v) for k, v in claims.items()}
    rows = []
    for th in THRESHOLDS:
        t0 = time.perf_counter()
        clusters = cluster_claims(claims, th)
        seconds = time.perf_counter() - t0
        bridged = [
            ids
            for ids in members(clusters).values()
            if any(jaccard(grams[a], grams[b]) < BRIDGE for a, b in itertools.combinations(ids, 2))
        ]
        rows.append({**summarize(clusters, th).as_dict(), "bridged": len(bridged),
                     "seconds": round(seconds, 3)})  # fmt: skip
    print(f"{len(claims)} rumor posts; shipped threshold {CLUSTER_JACCARD}")
    print("threshold  clusters  largest  singletons  bridged  seconds")
    for r in rows:
        print(f"{r['threshold']:>9}  {r['clusters']:>8}  {r['largest']:>7}  {r['singletons']:>10}"
              f"  {r['bridged']:>7}  {r['seconds']:>7}")  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"posts": len(claims), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
