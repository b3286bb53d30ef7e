"""Compare candidate `search` thresholds of the one scorer on one judging round's rows alone.

Run: ``python -m bench.round_thresholds --round 10 --search 0.7807 0.6729`` (``--set
claim_shared=2 ...``: another setting of the scorer, decision 0072). Every row of the
round, both halves, is scored by the matcher (the service's scorer) at each candidate `search`
(posted text at ``Thresholds().high``), and by BM25 and TF-IDF at thresholds tuned on the tune
halves of the other rounds only, so no threshold shown was chosen with the round's rows
(docs/decisions/0069). Prints the verdict of the re-pick rule: a candidate below the current
value (the first ``--search``) is adopted only when it answers no more everyday + same_topic rows
of the round with search p@1 >= 0.95 and r@1 >= 0.85 there; the fewest false answers win, a tie
goes to the higher search recall, then to the current value. Exits 0 with the reason when the
CED folder is absent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench import judged as judged_sets
from bench.eval_search import DATA, evaluate, fmt, load_background, load_library, run_method
from bench.retrievers import Bm25Retriever, MatcherRetriever, TfidfRetriever
from bench.search_scoring import PRECISION_TARGET, pick_threshold, right_answers, score_params
from matching import Matcher, Thresholds


def tuned_without(rows, names, score, held: int) -> dict[str, float]:
    """Per family, the eval-search threshold picked on the tune rows of every round but ``held``."""
    right = right_answers(rows, names)
    out = {}
    for family in ("search", "text"):
        mask = np.array([r.half == "tune" and r.family == family and r.round != held for r in rows])
        picked = pick_threshold(score[mask], right[mask], PRECISION_TARGET[family])
        out[family] = picked["threshold"]
    return out


def round_metrics(rows, names, score, per_family: dict[str, float], held: int) -> dict:
    """Per kind, the round's rows of both halves pooled: answered, right and false counts."""
    out = {}
    for half in judged_sets.HALVES:
        for kind, m in evaluate(rows, names, score, per_family, half, (held,)).items():
            acc = out.setdefault(kind, {"rows": 0, "answered": 0, "right": 0, "false": 0})
            acc["rows"] += m["rows"]
            acc["answered"] += m["answered"]
            acc["right"] += m["right"]
            acc["false"] += m["answered"] - m["right"]
    return out


def verdict(candidates: list[tuple[float, dict]]) -> float:
    """The `search` value the re-pick rule adopts from (value, round metrics), current first."""
    current = candidates[0][0]

    def passes(m: dict) -> bool:
        s = m["search"]
        return (
            bool(s["answered"])
            and s["right"] / s["answered"] >= 0.95
            and (s["right"] / s["rows"] >= 0.85)
        )

    def key(item: tuple[float, dict]) -> tuple:
        value, m = item
        false = m["everyday"]["false"] + m["same_topic"]["false"]
        return (false, -m["search"]["right"], value != current)

    ok = [c for c in candidates if passes(c[1])]
    return min(ok, key=key)[0] if ok else current


def line(label: str, kind: str, m: dict) -> str:
    """One table line: rows, answered, right, p@1, r@1, false answers."""
    p = m["right"] / m["answered"] if m["answered"] else None
    r = m["right"] / m["rows"] if kind in judged_sets.POSITIVE_KINDS and m["rows"] else None
    return (f"{kind:<11} {label:<24} {m['rows']:>4} {m['answered']:>4} {m['right']:>4} "
            f"{fmt(p)} {fmt(r)} {m['false']:>5}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Print the round's table per method and candidate threshold."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--round", type=int, choices=judged_sets.ROUNDS, required=True)
    ap.add_argument("--search", type=float, nargs="+", required=True)
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="ScoreParams changed from the defaults (decision 0072)")  # fmt: skip
    args = ap.parse_args(argv)
    params = score_params(args.set)
    if not (args.data / "posts.parquet").exists():
        print(f"round-thresholds: skipped, no CED data at {args.data}")
        return 0
    rows = judged_sets.load()
    library = load_library(args.data)
    post_ids = [e.rumor_id for e in library]
    high = Thresholds().high
    runs = []
    matcher = MatcherRetriever(
        library, Matcher(params=params, background=load_background(args.data))
    )
    names, score, _ = run_method(matcher, rows, post_ids)
    for s in args.search:
        runs.append((f"matcher@search={s:g}", names, score, {"search": s, "text": high}))
    for method in (Bm25Retriever(library), TfidfRetriever(library)):
        n, sc, _ = run_method(method, rows, post_ids)
        t = tuned_without(rows, n, sc, args.round)
        runs.append((f"{method.name}@{t['search']:.4g}/{t['text']:.4g}", n, sc, t))
    print(f"round {args.round}, both halves; columns: rows answered right p@1 r@1 false")
    results = [(label, round_metrics(rows, n, sc, t, args.round)) for label, n, sc, t in runs]
    for kind in judged_sets.KINDS:
        if results[0][1][kind]["rows"]:
            print("\n".join(line(label, kind, m[kind]) for label, m in results) + "\n")
    for label, _names, sc, t in runs[: len(args.search)]:
        answered = [
            f"{r.id} {r.query} {float(sc[i]):.3f}"
            for i, r in enumerate(rows)
            if r.round == args.round
            and r.kind in judged_sets.NEGATIVE_KINDS
            and sc[i] >= t[r.family]
        ]
        print(f"{label} false answers: " + ("; ".join(answered) or "none"))
    picked = verdict(list(zip(args.search, (m for _, m in results), strict=False)))
    print(f"re-pick rule: search {picked:g} (current {args.search[0]:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
