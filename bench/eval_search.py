"""Judge the matcher on text people type and post: hand-judged queries about real CED rumors,
our matcher beside a BM25 and a TF-IDF char 2-3-gram baseline, in the same run.

Run: ``python -m bench.eval_search`` (``make eval-search``). The library is the CED rumor posts,
read at run time from ``../shared/data/ced`` relative to the repository root (or ``--data``);
when that folder is absent the script prints the reason and exits 0. The judged rows live in
``bench/judged/`` (see ``bench/judged.py``; they name library rumors by post_id only).

Each method answers a query with its top-1 rumor when the score reaches a threshold chosen on the
tune half (per family: search-style rows aim at precision 0.95, posted text at 0.90; the lowest
score reaching it). Our matcher is also reported at the service's own threshold
(``Thresholds().search`` for search rows, what SearchTop answers at; ``Thresholds().high`` for
posted text, what GroupWarnings and the auto-tagger answer at), and ``no-intent`` is the same
matcher without the intent charge at its old thresholds (docs/decisions/0048), in the same
run. The tables are the test half;
``--half tune`` prints them for the tune half instead (what every choice is made on, so the
test half is read once per version); ``--rows 1``, ``2``, ``3`` or ``4`` restricts the tables to one
judging round (rounds 2, 3 and 4 were each written before any of their rows was scored);
``--set name=value ...`` scores with the matcher's ScoreParams changed (docs/decisions/0072).
Writes ``bench/out/eval_search.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench import judged as judged_sets
from bench.retrievers import Bm25Retriever, MatcherRetriever, TfidfRetriever
from bench.search_scoring import (
    PRECISION_TARGET,
    kind_metrics,
    pick_threshold,
    right_answers,
    score_params,
)
from matching import LibraryEntry, Matcher, ScoreParams, Thresholds
from matching.background import Background

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ced"
OUT = Path(__file__).parent / "out" / "eval_search.json"
FAMILIES = ("search", "text")
# The matcher as it was before the intent charge (docs/decisions/0048): its scorer and its
# thresholds, reported in the same run as the current one.
BEFORE_INTENT = Thresholds(high=0.9702, low=0.7284, search=0.8134)


def load_library(data: Path) -> list[LibraryEntry]:
    """The CED rumor posts as library entries (claim = post text), sorted by post_id."""
    import pyarrow.parquet as pq

    posts = pq.read_table(data / "posts.parquet", columns=["post_id", "label", "text"])
    rumors = sorted(
        (p["post_id"], p["text"] or "") for p in posts.to_pylist() if p["label"] == "rumor"
    )
    return [LibraryEntry(pid, text) for pid, text in rumors]


def load_background(data: Path) -> Background:
    """The CED ``non-rumor`` posts as the background of ordinary text (decision 0075): what a
    platform serves that is not a tagged rumor. Used only when ``--set claim_background=...``
    turns the test on."""
    import pyarrow.parquet as pq

    posts = pq.read_table(data / "posts.parquet", columns=["post_id", "label", "text"])
    texts = sorted(
        (p["post_id"], p["text"] or "") for p in posts.to_pylist() if p["label"] == "non-rumor"
    )
    return Background.from_texts(t for _, t in texts)


def run_method(method, rows, post_ids: list[str]) -> tuple[list[str | None], np.ndarray, float]:
    """Top-1 post id (None: no candidate) and score per row, and the seconds it took."""
    t0 = time.perf_counter()
    pred, score = method.top1([r.query for r in rows])
    names = [post_ids[i] if i >= 0 else None for i in pred.tolist()]
    return names, score, time.perf_counter() - t0


def thresholds_on_tune(rows, names, score) -> dict[str, dict]:
    """Per family, the threshold chosen on the tune half."""
    right = right_answers(rows, names)
    out = {}
    for family in FAMILIES:
        mask = np.array([r.half == "tune" and r.family == family for r in rows])
        out[family] = pick_threshold(score[mask], right[mask], PRECISION_TARGET[family])
    return out


def evaluate(
    rows, names, score, per_family: dict[str, float], half: str = "test", rounds=(1, 2)
) -> dict[str, dict]:
    """Metrics per kind on one half (rows of the given rounds), each row answered at its
    family's threshold."""
    out = {}
    for kind in judged_sets.KINDS:
        idx = [
            i for i, r in enumerate(rows) if r.kind == kind and r.half == half and r.round in rounds
        ]
        threshold = np.array([per_family[rows[i].family] for i in idx])
        out[kind] = kind_metrics(
            [rows[i] for i in idx], [names[i] for i in idx], score[idx], threshold
        )
    return out


def fmt(x: float | None) -> str:
    """A rate for the table ('-' when undefined)."""
    return "    -" if x is None else f"{x:5.2f}"


def table(results: list[dict]) -> str:
    """Per kind, one line per method: p@1, r@1, false-answer rate, top-1 right (the half
    evaluated)."""
    head = f"{'kind':<12} {'method':<18} {'rows':>4} {'p@1':>5} {'r@1':>5} {'false':>5} {'top1':>5}"
    lines = [head, "-" * len(head)]
    for kind in judged_sets.KINDS:
        if not results[0]["metrics"][kind]["rows"]:
            continue  # no row of this kind in the rows shown
        for res in results:
            m = res["metrics"][kind]
            extra = f"  (near rumor {m['near_answer_rate']:.2f})" if "near_answer_rate" in m else ""
            rates = (m["p_at_1"], m["r_at_1"], m["false_answer_rate"], m["top1_right_rate"])
            lines.append(
                f"{kind:<12} {res['method']:<18} {m['rows']:>4} "
                + " ".join(fmt(x) for x in rates)
                + extra
            )
        lines.append("")
    return "\n".join(lines)


def threshold_lines(results: list[dict]) -> str:
    """One line per method: its threshold per family and the tune precision it reached."""
    lines = []
    for res in results:
        parts = []
        for f in FAMILIES:
            note = ""
            if res["tuning"] is not None:
                c = res["tuning"][f]
                note = f" (tune p={c['precision']}{'' if c['reached'] else ', target not reached'})"
            parts.append(f"{f}>={res['thresholds'][f]:.4g}{note}")
        lines.append(f"  {res['method']:<18} " + "; ".join(parts))
    return "\n".join(lines)


def per_row(rows, predictions: dict[str, tuple[list, np.ndarray]]) -> list[dict]:
    """Every row's top-1 post and score per method (for reading the misses)."""
    out = []
    for i, r in enumerate(rows):
        row = {"id": r.id, "kind": r.kind, "half": r.half, "round": r.round}
        for name, (names, score) in predictions.items():
            row[name] = {"post": names[i], "score": round(float(score[i]), 4)}
        out.append(row)
    return out


def counts(rows) -> dict[str, dict[str, int]]:
    """Rows per kind and half."""
    return {
        k: {h: sum(1 for r in rows if r.kind == k and r.half == h) for h in judged_sets.HALVES}
        for k in judged_sets.KINDS
    }


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; 0 also when the CED folder is absent (skipped, with the reason)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--judged", type=Path, default=judged_sets.FOLDER)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--half",
        choices=judged_sets.HALVES,
        default="test",
        help="the half the tables are printed for (thresholds are always chosen on tune)",
    )
    ap.add_argument(
        "--rows",
        choices=("all", *(str(r) for r in judged_sets.ROUNDS)),
        default="all",
        help="the tables for the rows of one judging round only (thresholds use every tune row)",
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="the matcher's ScoreParams changed from the defaults")  # fmt: skip
    args = ap.parse_args(argv)
    params = score_params(args.set)
    rounds = judged_sets.ROUNDS if args.rows == "all" else (int(args.rows),)
    if not (args.data / "posts.parquet").exists():
        print(f"eval-search: skipped, no CED data at {args.data}")
        return 0
    t0 = time.perf_counter()
    rows = judged_sets.load(args.judged)
    library = load_library(args.data)
    post_ids = [e.rumor_id for e in library]
    known = set(post_ids)
    unknown = sorted({p for r in rows for p in r.accepted if p not in known})
    if unknown:
        print(f"eval-search: judged rows name posts that are not CED rumors: {unknown[:5]}")
        return 1
    print(f"library {len(library)} CED rumors; judged rows {len(rows)}; "
          f"rumors covered {len({r.expected for r in rows if r.expected})}")  # fmt: skip
    matcher = MatcherRetriever(
        library, Matcher(params=params, background=load_background(args.data))
    )
    old = ScoreParams(intent_cost=0.0, bare_scale=1.0)  # no intent charge, no bare rule
    before = MatcherRetriever(library, Matcher(BEFORE_INTENT, old), name="no-intent")
    methods = [matcher, before, Bm25Retriever(library), TfidfRetriever(library)]
    results, predictions = [], {}
    for method in methods:
        names, score, seconds = run_method(method, rows, post_ids)
        predictions[method.name] = (names, score)
        chosen = thresholds_on_tune(rows, names, score)
        runs = [(f"{method.name}@tuned", {f: c["threshold"] for f, c in chosen.items()})]
        if isinstance(method, MatcherRetriever):
            runs.insert(0, (f"{method.name}@service", method.service_thresholds))
        for label, per_family in runs:
            results.append(
                {
                    "method": label,
                    "thresholds": per_family,
                    "tuning": chosen if label.endswith("@tuned") else None,
                    "seconds": round(seconds, 2),
                    "half": args.half,
                    "rows": args.rows,
                    "metrics": evaluate(rows, names, score, per_family, args.half, rounds),
                }
            )
    print("thresholds (chosen on the tune half: lowest score reaching the family's precision):")
    print(threshold_lines(results))
    print(f"\n{args.half} half, rows of round {args.rows} "
          f"(targets: search p@1 {PRECISION_TARGET['search']}, "
          f"text p@1 {PRECISION_TARGET['text']})")  # fmt: skip
    print(table(results))
    result = {
        "data": str(args.data),
        "library_rumors": len(library),
        "rows": counts(rows),
        "precision_target": PRECISION_TARGET,
        "half": args.half,
        "results": results,
        "predictions": per_row(rows, predictions),
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} in {result['elapsed_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
