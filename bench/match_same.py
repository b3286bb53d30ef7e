"""Whether two versions of ``matching/`` give the same answers, bit for bit, on real Weibo text.

Run: ``python -m bench.match_same --dump OUT.npz [--code DIR]`` once per version (``--code``:
the checkout whose ``matching/`` to import, e.g. a worktree of main; default this one), then
``python -m bench.match_same --compare A.npz B.npz`` (``make match-same MAIN=DIR`` does all
three). Reads ``../shared/data/ced`` (or ``--data``) at run time and prints the
reason and exits 0 when it is absent; nothing of it is written into the repository.

Library: the 30,000-rumor library of ``make eval-matching``. Texts: every CED post and every
``--step``-th non-empty repost or comment (``--step 4``: about 300,000 texts), in file order.
Dumped: every (text, rumor, document, score) row of ``Matcher.scores`` (all candidates above
``min_score``, not only the top ones), the rows of ``Matcher.top(texts, 3)`` and the tag and
review tables of ``offline.nightly.match.match_items`` (the nightly's path, repeated texts
included): the compare step requires them to be equal array for array, floats included (exit 1
otherwise).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ced"
BATCH = 512
FIELDS = (
    "text", "rumor", "doc", "score", "top_text", "top_rumor", "top_score",
    "tag_item", "tag_rumor", "tag_score", "review_item", "review_rumor", "review_score",
)  # fmt: skip


def real_texts(data: Path, step: int) -> list[str]:
    """Every CED post text and every ``step``-th non-empty engagement text, in file order."""
    import pyarrow.parquet as pq

    posts = pq.read_table(data / "posts.parquet", columns=["text"]).column("text").to_pylist()
    eng = pq.read_table(data / "engagements.parquet", columns=["text"]).column("text")
    replies = [t for t in eng.to_pylist() if t and t.strip()]
    return [t for t in posts if t] + replies[::step]


def dump(data: Path, step: int, out: Path) -> None:
    """Score the texts with the ``matching`` on ``sys.path`` and save every output array."""
    import pyarrow as pa

    from bench.eval_matching import SEED, big_library, load
    from matching import Matcher
    from offline.nightly.match import match_items

    rng = np.random.default_rng(SEED)
    d = load(data, rng)
    matcher = Matcher().build(big_library(d["library"], d["filler"], rng))
    texts = real_texts(data, step)
    t0 = time.process_time()
    parts: dict[str, list[np.ndarray]] = {f: [] for f in FIELDS}
    for lo in range(0, len(texts), BATCH):
        s = matcher.scores(texts[lo : lo + BATCH])
        parts["text"].append(s.text + lo)
        for name in ("rumor", "doc", "score"):
            parts[name].append(getattr(s, name))
    cpu = time.process_time() - t0
    top = matcher.top(texts, 3)
    parts["top_text"], parts["top_rumor"], parts["top_score"] = [top.text], [top.rumor], [top.score]
    items = pa.table({"item_id": [str(i) for i in range(len(texts))], "text": texts})
    for name, table in zip(("tag", "review"), match_items(items, matcher), strict=True):
        parts[f"{name}_item"] = [np.array(table.column("item_id").to_pylist(), dtype=np.int64)]
        parts[f"{name}_rumor"] = [np.array(table.column("rumor_id").to_pylist(), dtype=str)]
        parts[f"{name}_score"] = [table.column("score").to_numpy()]
    arrays = {f: np.concatenate(v) for f, v in parts.items()}
    np.savez(out, **arrays)
    print(f"{len(texts)} texts, {len(arrays['text'])} scored pairs, {cpu:.1f} CPU-s -> {out}")


def compare(a: Path, b: Path) -> int:
    """0 when every array of the two dumps is equal (dtype and bits), 1 otherwise (0 when a
    dump is missing because the data was absent: the dump step said so)."""
    if not (a.exists() and b.exists()):
        print("match-same: skipped, nothing dumped to compare")
        return 0
    x, y = np.load(a), np.load(b)
    bad = [
        f
        for f in FIELDS
        if x[f].dtype != y[f].dtype or x[f].shape != y[f].shape or x[f].tobytes() != y[f].tobytes()
    ]
    rows = len(x["text"])
    texts = len(np.unique(x["text"]))
    if bad:
        print(f"match-same: DIFFERENT in {', '.join(bad)} ({rows} vs {len(y['text'])} rows)")
        return 1
    tops, tags, queued = len(x["top_text"]), len(x["tag_item"]), len(x["review_item"])
    print(
        f"match-same: identical: {rows} scored pairs over {texts} texts, {tops} top rows, "
        f"{tags} tags, {queued} review rows"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dump one version's outputs, or compare two dumps."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--code", type=Path, help="checkout whose matching/ is imported")
    ap.add_argument("--dump", type=Path)
    ap.add_argument("--compare", type=Path, nargs=2)
    args = ap.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if args.dump is None:
        ap.error("give --dump OUT.npz or --compare A.npz B.npz")
    if not (args.data / "posts.parquet").exists():
        print(f"match-same: skipped, no CED data at {args.data}")
        return 0
    if args.step < 1:
        ap.error("--step must be at least 1")
    if args.code is not None:
        sys.path.insert(0, str(args.code.resolve()))
        for name in [m for m in sys.modules if m.split(".")[0] in ("matching", "offline")]:
            del sys.modules[name]
    import matching

    print(f"matching from {Path(matching.__file__).parent}")  # the version under test
    args.dump.parent.mkdir(parents=True, exist_ok=True)
    dump(args.data, args.step, args.dump)
    return 0


if __name__ == "__main__":
    sys.exit(main())
