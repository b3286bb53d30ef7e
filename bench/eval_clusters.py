"""Claim clusters on real Weibo data (CED): how many clusters the 1,538 rumor posts form at each
Jaccard threshold, and how many clusters are bridged (two members sharing < 3% of their grams:
a post quoting two stories joined them); and, for reposts and comments that quote their rumor
post (a run of 10 normalised characters), how often the matcher's best auto tag is that very
post, and how often it is in the post's claim cluster.

Run: ``python -m bench.eval_clusters`` (reads ``../shared/data/ced`` relative to the repository
root, or ``--data``; prints the reason and exits 0 when it is absent). Prints a table and writes
``bench/out/eval_clusters.json``. The shipped threshold (``ranking.clusters.CLUSTER_JACCARD``)
is the lowest round value with no bridged cluster; see docs/decisions/0010-claim-clusters.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from matching import LibraryEntry, Matcher
from ranking.clusters import (
    CLUSTER_JACCARD,
    claim_grams,
    cluster_claims,
    jaccard,
    members,
    plain_text,
    summarize,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ced"
OUT = Path(__file__).parent / "out" / "eval_clusters.json"
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.32, 0.35, 0.4, 0.5, 0.6, 0.7)
BRIDGE = 0.03
QUOTE_CHARS = 10
MAX_QUOTING = 8_000  # quoting reposts evaluated, from a seeded shuffle of the engagements
SEED = 7


def quotes(text: str, original: str) -> bool:
    """Whether ``text`` shares a QUOTE_CHARS-long run with ``original`` (both plain)."""
    a, b = plain_text(text), plain_text(original)
    runs = {b[i : i + QUOTE_CHARS] for i in range(len(b) - QUOTE_CHARS + 1)}
    return any(a[i : i + QUOTE_CHARS] in runs for i in range(len(a) - QUOTE_CHARS + 1))


def own_or_sibling(data: Path, claims: dict[str, str]) -> dict[str, float | int]:
    """The matcher's best auto tag of quoting reposts: the quoted post itself, or its cluster."""
    clusters = cluster_claims(claims)
    matcher = Matcher().build([LibraryEntry(k, v) for k, v in sorted(claims.items())])
    table = pq.read_table(data / "engagements.parquet", columns=["post_id", "text"])
    table = table.filter(pc.is_in(table["post_id"], value_set=pa.array(sorted(claims))))
    table = table.filter(pc.greater_equal(pc.utf8_length(table["text"]), QUOTE_CHARS))
    order = list(range(table.num_rows))
    random.Random(SEED).shuffle(order)
    posts, texts = table["post_id"].to_pylist(), table["text"].to_pylist()
    rows: list[tuple[str, str]] = []
    for i in order:
        if quotes(texts[i], claims[posts[i]]):
            rows.append((posts[i], texts[i]))
            if len(rows) == MAX_QUOTING:
                break
    tagged = own = same = 0
    for (post, _), found in zip(rows, matcher.match_batch([x for _, x in rows], k=16), strict=True):
        auto = [m for m in found if m.score >= matcher.thresholds.high]
        if auto:
            best = min(auto, key=lambda m: (-m.score, m.rumor_id))
            tagged += 1
            own += best.rumor_id == post
            same += clusters[best.rumor_id] == clusters[post]
    return {
        "quoting": len(rows),
        "auto_tagged": tagged,
        "own_post": round(own / max(tagged, 1), 3),
        "same_cluster": round(same / max(tagged, 1), 3),
    }


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
    tags = own_or_sibling(args.data, claims) if (args.data / "engagements.parquet").exists() else {}
    if tags:
        print(
            f"{tags['auto_tagged']} of {tags['quoting']} quoting reposts auto-tagged: the best"
            f" tag is the quoted post {tags['own_post']}, in its cluster {tags['same_cluster']}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"posts": len(claims), "rows": rows, "tags": tags}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
