"""The tune half of the judged search rows and a matcher over CED's library, as every
scorer sweep needs them (the test half is never loaded here)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import judged as judged_sets
from bench.eval_search import load_background, load_library
from bench.retrievers import MatcherRetriever
from matching import Matcher, ScoreParams


@dataclass
class TuneHalf:
    """The tune rows, the matcher that answers them and the library's rumor ids by index."""

    rows: list[judged_sets.Judged]
    retriever: MatcherRetriever
    post_ids: list[str]

    def top1(self, **params: float | str | bool) -> tuple[list[str | None], np.ndarray]:
        """Each row's top rumor (None: no answer) and its score, with ScoreParams' defaults
        replaced by ``params``."""
        self.retriever.matcher.params = dataclasses.replace(ScoreParams(), **params)
        pred, score = self.retriever.top1([r.query for r in self.rows])
        return [self.post_ids[i] if i >= 0 else None for i in pred.tolist()], score


def load_tune_half(data: Path, sweep: str) -> TuneHalf | None:
    """The tune half over the CED folder ``data``; None, after saying so, without it."""
    if not (data / "posts.parquet").exists():
        print(f"{sweep}: skipped, no CED data at {data}")
        return None
    library = load_library(data)
    rows = [r for r in judged_sets.load(judged_sets.FOLDER) if r.half == "tune"]
    matcher = Matcher(background=load_background(data))  # used only by decision 0075's test
    return TuneHalf(rows, MatcherRetriever(library, matcher), [e.rumor_id for e in library])
