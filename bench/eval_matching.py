"""Evaluate the rumor matcher on real Weibo data (CED) against a TF-IDF character n-gram baseline,
and measure throughput, latency and index memory against a 30,000-rumor library.

Run: ``python -m bench.eval_matching`` (``make eval-matching``). Reads ``../shared/data/ced``
relative to the repository root (or ``--data``); prints the reason and exits 0 when it is absent.
Writes ``bench/out/eval_matching.json``.

Labels (a rule, not human judgement):
- library: the 1,538 rumor posts (claim = post text, no keywords, no variants);
- positive: a repost/comment text of a rumor post that shares a run of at least ``QUOTE_CHARS``
  (10) consecutive characters with the post, comparing both after normalisation (emoji codes,
  links, @mentions and punctuation removed, NFKC, case-folded): it quotes the rumor. A right
  answer is any rumor post the text quotes by the same rule (CED holds many re-posts of one
  story as separate rumor posts). These texts are never in the library;
- negative: the non-rumor posts and a sample of their reposts/comments with at least 10
  characters after normalisation (any rumor above threshold is a false positive);
- left out: rumor reposts without such a quote (mostly short reactions: "真的吗", "[怒]").
Positives and negatives are split by post into a tuning half (thresholds are picked there) and a
test half (the reported numbers). high = the lowest threshold with precision >= 0.99 on tuning
(a margin over the 0.98 target); low = the lowest with precision >= 0.80 (the review queue).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
import unicodedata
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench import eval_matching_claims
from bench.common import current_rss_mb
from matching import LibraryEntry, Matcher, Thresholds
from matching.grams import CJK, WORD
from matching.normalize import segments

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ced"
OUT = Path(__file__).parent / "out" / "eval_matching.json"
QUOTE_CHARS = 10
MIN_CHARS = 10
SEED = 20240611
MAX_POSITIVES = 12_000
MAX_NEGATIVE_REPOSTS = 12_000
LIBRARY_SIZE = 30_000
HIGH_PRECISION = 0.99  # the target is 0.98 on unseen data: tune with a margin
LOW_PRECISION = 0.80


# ---------------------------------------------------------------------------------------------
# Data and labels.


def compact(text: str | None) -> str:
    """Only the word and CJK characters of the normalised text (for the quote rule)."""
    import re

    return "".join(re.findall(f"[{CJK}]|{WORD.pattern}", " ".join(segments(text))))


def quotes(text: str, original: set[str]) -> bool:
    """Whether ``text`` (compacted) shares a QUOTE_CHARS-long run with the original's shingles."""
    return any(text[i : i + QUOTE_CHARS] in original for i in range(len(text) - QUOTE_CHARS + 1))


def shingles(text: str) -> set[str]:
    """All QUOTE_CHARS-long substrings."""
    return {text[i : i + QUOTE_CHARS] for i in range(len(text) - QUOTE_CHARS + 1)}


def load(data: Path, rng: np.random.Generator) -> dict:
    """Library entries, queries (text, indices of the rumors it quotes, post id) and filler."""
    posts = pq.read_table(data / "posts.parquet", columns=["post_id", "label", "text"]).to_pylist()
    rumors = [p for p in posts if p["label"] == "rumor"]
    rumor_of = {p["post_id"]: i for i, p in enumerate(rumors)}
    orig = {p["post_id"]: shingles(compact(p["text"])) for p in rumors}
    owners: dict[str, set[int]] = {}
    for p in rumors:
        for s in orig[p["post_id"]]:
            owners.setdefault(s, set()).add(rumor_of[p["post_id"]])
    label = {p["post_id"]: p["label"] for p in posts}
    eng = pq.read_table(data / "engagements.parquet", columns=["post_id", "text"])
    eng = eng.filter(pc.greater_equal(pc.utf8_length(eng["text"]), MIN_CHARS))
    pos, neg, filler = [], [], []
    for pid, text in zip(eng["post_id"].to_pylist(), eng["text"].to_pylist(), strict=True):
        c = compact(text)
        if len(c) < MIN_CHARS:
            continue
        if label.get(pid) == "rumor":
            if quotes(c, orig[pid]):
                quoted = set().union(*(owners.get(s, set()) for s in shingles(c)))
                pos.append((text, tuple(sorted(quoted)), pid))
        elif label.get(pid) == "non-rumor":
            neg.append((text, (), pid))
    filler = [t for t, _, _ in neg if len(t) >= 40]
    pos = [pos[i] for i in rng.permutation(len(pos))[:MAX_POSITIVES]]
    neg = [neg[i] for i in rng.permutation(len(neg))[:MAX_NEGATIVE_REPOSTS]]
    neg += [(p["text"], (), p["post_id"]) for p in posts if p["label"] == "non-rumor"]
    library = [LibraryEntry(p["post_id"], p["text"]) for p in rumors]
    return {"library": library, "queries": pos + neg, "filler": filler, "posts": len(posts)}


# ---------------------------------------------------------------------------------------------
# The baseline: TF-IDF character 2-3-gram cosine on the raw folded text.


def char_grams(text: str | None) -> dict[int, int]:
    """Counts of character 2- and 3-grams of the NFKC, case-folded, space-free text."""
    t = "".join(unicodedata.normalize("NFKC", text or "").casefold().split())
    out: dict[int, int] = {}
    for n in (2, 3):
        for i in range(len(t) - n + 1):
            h = zlib.crc32(t[i : i + n].encode())
            out[h] = out.get(h, 0) + 1
    return out


def tfidf(texts: list[str], vocab: np.ndarray | None, idf: np.ndarray | None):
    """(row, vocab index, l2-normalised tf-idf) triples; fits vocab and idf when None."""
    rows, grams, tf = [], [], []
    for r, t in enumerate(texts):
        for g, c in char_grams(t).items():
            rows.append(r)
            grams.append(g)
            tf.append(c)
    rows, grams = np.array(rows, np.int64), np.array(grams, np.int64)
    tf = 1.0 + np.log(np.array(tf, np.float64))
    if vocab is None:
        vocab, gi = np.unique(grams, return_inverse=True)
        df = np.bincount(gi, minlength=len(vocab))
        idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    gi = np.minimum(np.searchsorted(vocab, grams), len(vocab) - 1)
    known = vocab[gi] == grams
    w = tf * np.where(known, idf[gi], np.log(1 + len(texts)) + 1.0)
    norm = np.sqrt(np.bincount(rows, weights=w * w, minlength=len(texts)))
    w = w / norm[rows]
    return rows[known], gi[known], w[known], vocab, idf


def baseline_best(library: list[str], queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Top library row and cosine for each query."""
    d_rows, d_gi, d_w, vocab, idf = tfidf(library, None, None)
    order = np.argsort(d_gi, kind="stable")
    post_doc, post_w = d_rows[order], d_w[order]
    indptr = np.zeros(len(vocab) + 1, np.int64)
    np.cumsum(np.bincount(d_gi, minlength=len(vocab)), out=indptr[1:])
    best = np.full(len(queries), -1, np.int64)
    cos = np.zeros(len(queries))
    for lo in range(0, len(queries), 1000):
        q_rows, q_gi, q_w, _, _ = tfidf(queries[lo : lo + 1000], vocab, idf)
        lens = indptr[q_gi + 1] - indptr[q_gi]
        rep = np.repeat(np.arange(len(q_gi)), lens)
        idx = indptr[q_gi][rep] + np.arange(int(lens.sum())) - (np.cumsum(lens) - lens)[rep]
        key = q_rows[rep] * len(library) + post_doc[idx]
        uk, inv = np.unique(key, return_inverse=True)
        dot = np.bincount(inv, weights=q_w[rep] * post_w[idx])
        order = np.lexsort((-dot, uk // len(library)))
        uk, dot = uk[order], dot[order]
        first = np.ones(len(uk), bool)
        first[1:] = uk[1:] // len(library) != uk[:-1] // len(library)
        best[uk[first] // len(library) + lo] = uk[first] % len(library)
        cos[uk[first] // len(library) + lo] = dot[first]
    return best, np.clip(cos, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Metrics.


def hits(quoted: list[tuple[int, ...]], pred: np.ndarray) -> np.ndarray:
    """Whether each top prediction is a rumor the text quotes."""
    return np.array([p in q for p, q in zip(pred.tolist(), quoted, strict=True)], dtype=bool)


def pr_at(positive: np.ndarray, hit: np.ndarray, score: np.ndarray, t: float) -> dict:
    """Precision and recall of "top rumor with score >= t" (a wrong rumor is a false positive)."""
    flagged = score >= t
    correct = int((flagged & hit).sum())
    n_flag, n_pos = int(flagged.sum()), int(positive.sum())
    return {
        "threshold": round(float(t), 4),
        "precision": round(correct / n_flag, 4) if n_flag else 1.0,
        "recall": round(correct / n_pos, 4) if n_pos else 0.0,
        "flagged": n_flag,
        "false_positives": n_flag - correct,
    }


def pick_threshold(hit: np.ndarray, score: np.ndarray, target: float) -> float:
    """The lowest threshold (a score seen) whose precision on these rows is at least ``target``."""
    order = np.argsort(-score, kind="stable")
    s, h = score[order], hit[order]
    last = np.ones(len(s), dtype=bool)  # only cut between distinct scores
    last[:-1] = s[1:] != s[:-1]
    prec = np.cumsum(h) / np.arange(1, len(h) + 1)
    ok = np.flatnonzero((prec >= target) & last & (s > 0))
    return float(s[ok[-1]]) if len(ok) else 1.0


def evaluate(name: str, quoted, pred, score, tune, test) -> dict:
    """Thresholds picked on ``tune`` rows, precision/recall reported on ``test`` rows."""
    positive = np.array([len(q) > 0 for q in quoted])
    hit = hits(quoted, pred)
    high = pick_threshold(hit[tune], score[tune], HIGH_PRECISION)
    low = min(pick_threshold(hit[tune], score[tune], LOW_PRECISION), high)
    return {
        "method": name,
        "high": pr_at(positive[test], hit[test], score[test], high),
        "low": pr_at(positive[test], hit[test], score[test], low),
    }


def at(quoted, pred, score, rows, thresholds: Thresholds) -> dict:
    """Precision/recall of the matcher's default thresholds on ``rows``."""
    positive = np.array([len(q) > 0 for q in quoted])[rows]
    hit = hits(quoted, pred)[rows]
    return {
        "high": pr_at(positive, hit, score[rows], thresholds.high),
        "low": pr_at(positive, hit, score[rows], thresholds.low),
    }


# ---------------------------------------------------------------------------------------------
# Throughput, latency, memory against a 30,000-rumor library.


def big_library(library: list[LibraryEntry], filler: list[str], rng) -> list[LibraryEntry]:
    """The CED rumors plus real long repost texts as further claims, up to LIBRARY_SIZE."""
    pick = rng.permutation(len(filler))[: LIBRARY_SIZE - len(library)]
    extra = [LibraryEntry(f"x{i:06d}", filler[j]) for i, j in enumerate(pick.tolist())]
    return library + extra


_WORKER: Matcher | None = None


def _count(texts: list[str]) -> int:
    """Match a share of the texts in a forked worker (the index is shared copy-on-write)."""
    assert _WORKER is not None
    _WORKER.best(texts)
    return len(texts)


def performance(library: list[LibraryEntry], texts: list[str], cores: int) -> dict:
    """Index memory (tracemalloc and RSS), offline texts/s on ``cores`` processes, online p99."""
    global _WORKER
    rss0 = current_rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    matcher = Matcher().build(library)
    build_s = time.perf_counter() - t0
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    _WORKER = matcher
    share = [texts[i::cores] for i in range(cores)]
    import multiprocessing as mp

    with ProcessPoolExecutor(cores, mp_context=mp.get_context("fork")) as pool:
        list(pool.map(_count, [s[:200] for s in share]))  # warm the workers
        t0 = time.perf_counter()
        n = sum(pool.map(_count, share))
        offline_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    matcher.best(texts[:5000])
    one_core = 5000 / (time.perf_counter() - t1)
    lat = []
    for t in texts[:3000]:
        s = time.perf_counter()
        matcher.match(t)
        lat.append((time.perf_counter() - s) * 1000)
    lat_a = np.array(lat)
    return {
        "library_rumors": len(library),
        "index_documents": len(matcher.doc_texts),
        "index_grams": int(len(matcher.index.vocab)),
        "index_postings": int(len(matcher.index.postings)),
        "index_array_mb": round(matcher.index.nbytes / 2**20, 1),
        "index_traced_mb": round(current / 2**20, 1),
        "build_peak_traced_mb": round(peak / 2**20, 1),
        "rss_growth_mb": round(current_rss_mb() - rss0, 1),
        "build_s": round(build_s, 2),
        "offline_texts": n,
        "offline_cores": cores,
        "offline_texts_per_s": round(n / offline_s),
        "one_core_texts_per_s": round(one_core),
        "online_p50_ms": round(float(np.percentile(lat_a, 50)), 3),
        "online_p99_ms": round(float(np.percentile(lat_a, 99)), 3),
        "online_max_ms": round(float(lat_a.max()), 3),
    }


# ---------------------------------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    """The precision/recall table as plain text."""
    head = (
        f"{'method':<10} {'level':<5} {'thresh':>7} {'precision':>9} {'recall':>7} {'flagged':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        for level in ("high", "low"):
            m = r[level]
            lines.append(
                f"{r['method']:<10} {level:<5} {m['threshold']:>7.3f} {m['precision']:>9.4f} "
                f"{m['recall']:>7.4f} {m['flagged']:>8}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; 0 also when the data folder is absent (skipped, with the reason)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--skip-performance",
        action="store_true",
        help="precision and recall only (throughput is also in make bench-matching)",
    )
    args = ap.parse_args(argv)
    if (
        not (args.data / "posts.parquet").exists()
        or not (args.data / "engagements.parquet").exists()
    ):
        print(f"eval-matching: skipped, no CED data at {args.data}")
        return 0
    rng = np.random.default_rng(SEED)
    t0 = time.perf_counter()
    d = load(args.data, rng)
    queries = [q[0] for q in d["queries"]]
    quoted = [q[1] for q in d["queries"]]
    n_pos = sum(1 for q in quoted if q)
    post_ids = sorted({q[2] for q in d["queries"]})
    tune_posts = {p for p, u in zip(post_ids, rng.random(len(post_ids)), strict=True) if u < 0.5}
    tune = np.array([q[2] in tune_posts for q in d["queries"]])
    test = ~tune
    print(
        f"library {len(d['library'])} rumors; queries {len(queries)} "
        f"({n_pos} positive, {len(quoted) - n_pos} negative); "
        f"load {time.perf_counter() - t0:.1f}s"
    )

    matcher = Matcher().build(d["library"])
    t1 = time.perf_counter()
    pred, score, _ = matcher.best(queries)
    ours_s = time.perf_counter() - t1
    t1 = time.perf_counter()
    b_pred, b_score = baseline_best([e.claim for e in d["library"]], queries)
    base_s = time.perf_counter() - t1
    rows = [
        evaluate("matcher", quoted, pred, score, tune, test),
        evaluate("tfidf-cos", quoted, b_pred, b_score, tune, test),
    ]
    defaults = Thresholds()
    rows[0]["at_defaults"] = at(quoted, pred, score, test, defaults)
    positive = np.array([len(q) > 0 for q in quoted])
    for row, (p_, s_) in zip(rows, ((pred, score), (b_pred, b_score)), strict=True):
        h = hits(quoted, p_)
        row["sweep_test"] = [
            pr_at(positive[test], h[test], s_[test], t) for t in (0.1, 0.15, 0.2, 0.25, 0.35, 0.5)
        ]
    print(table(rows))
    print(
        f"matcher defaults high={defaults.high} low={defaults.low}: "
        f"{rows[0]['at_defaults']['high']} / {rows[0]['at_defaults']['low']}"
    )
    claims = eval_matching_claims.at_high(
        queries, quoted, pred, score, d["library"], test, defaults.high
    )
    rows[0]["at_high_claims"] = claims
    print(eval_matching_claims.table(claims, defaults.high))
    over = eval_matching_claims.levels(
        quoted, pred, score, d["library"], {"tune": tune, "test": test}
    )
    rows[0]["levels_over_high"] = over
    print(eval_matching_claims.levels_table(over))
    perf = None
    if not args.skip_performance:
        perf_texts = [queries[i] for i in rng.permutation(len(queries))[:20_000]]
        perf = performance(big_library(d["library"], d["filler"], rng), perf_texts, args.cores)
        print(json.dumps(perf, indent=1))
    result = {
        "data": str(args.data),
        "rule": {"quote_chars": QUOTE_CHARS, "min_chars": MIN_CHARS, "seed": SEED},
        "queries": {
            "positive": n_pos,
            "negative": len(quoted) - n_pos,
            "tune": int(tune.sum()),
            "test": int(test.sum()),
        },
        "accuracy": rows,
        "scoring_s": {"matcher": round(ours_s, 2), "baseline": round(base_s, 2)},
        "performance": perf,
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} in {result['elapsed_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
