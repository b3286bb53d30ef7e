"""An optional semantic reranker over the matcher's best candidates.

The lexical score finds candidates and decides; a reranker, when one is configured, blends a
semantic similarity into the score of each text's ``depth`` best candidates, so a paraphrase or
a synonym the grams miss can still rise. Nothing is configured by default, and nothing is ever
downloaded: ``StaticEmbeddings.load`` reads a sentence-embedding model of the static kind (one
vector per token; a text is the mean of its tokens' vectors, as model2vec-style distilled
models are) from a local folder:

- ``vocab.txt``: one token a line (a character, a jieba word or a Latin word, folded as the
  matcher folds: NFKC, lower case, simplified);
- ``vectors.npy``: a float32 matrix, one row per line of ``vocab.txt``.

The blend is ``(1 - weight) * score + weight * similarity`` with the similarity in [0, 1]; the
candidates are then re-sorted (ties: lower rumor id first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from matching.chinese import cut
from matching.grams import CJK_RANGES, WORD
from matching.library import Match
from matching.normalize import segments


class Reranker(Protocol):
    """Anything that scores how close two texts are in meaning."""

    depth: int  # how many of a text's best candidates it rescores
    weight: float  # its share of the blended score

    def similarity(self, texts: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        """Similarity in [0, 1] of each (text, document) pair, pairwise (equal lengths)."""
        ...


def rerank(
    reranker: Reranker, texts: Sequence[str | None], found: list[list[Match]]
) -> list[list[Match]]:
    """Each text's matches with the reranker's similarity blended in, best first."""
    pairs = [(i, m) for i, ms in enumerate(found) for m in ms[: reranker.depth]]
    if not pairs:
        return found
    sims = reranker.similarity(
        [texts[i] or "" for i, _ in pairs], [m.matched_text for _, m in pairs]
    )
    w = float(reranker.weight)
    out = [list(ms) for ms in found]
    for (i, m), sim in zip(pairs, np.clip(sims, 0.0, 1.0).tolist(), strict=True):
        blended = round((1.0 - w) * m.score + w * sim, 6)
        out[i][out[i].index(m)] = replace(m, score=blended)
    return [sorted(ms, key=lambda m: (-m.score, m.rumor_id)) for ms in out]


def tokens(text: str) -> list[str]:
    """The folded text's characters (CJK), jieba words and Latin words, in order."""
    out: list[str] = []
    for seg in segments(text):
        for token in cut(seg):
            if any(lo <= ord(token[0]) <= hi for lo, hi in CJK_RANGES):
                if len(token) > 1:
                    out.append(token)
                out.extend(token)
        out.extend(m.group() for m in WORD.finditer(seg))
    return out


@dataclass(frozen=True)
class StaticEmbeddings:
    """A static sentence-embedding model: token vectors, a text is their normalised mean."""

    vocab: dict[str, int]
    vectors: np.ndarray  # float32 (tokens, dims)
    depth: int = 5
    weight: float = 0.3

    @classmethod
    def load(cls, folder: str | Path, depth: int = 5, weight: float = 0.3) -> StaticEmbeddings:
        """The model in ``folder`` (``vocab.txt`` and ``vectors.npy``); raises ValueError when
        the two do not agree."""
        folder = Path(folder)
        words = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
        vectors = np.load(folder / "vectors.npy", allow_pickle=False).astype(np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(
                f"{folder}: {len(words)} tokens in vocab.txt but vectors.npy is {vectors.shape}"
            )
        return cls({w: i for i, w in enumerate(words)}, vectors, depth, weight)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length mean token vector of each text (zeros when no token is known)."""
        out = np.zeros((len(texts), self.vectors.shape[1]), dtype=np.float32)
        for i, text in enumerate(texts):
            ids = [self.vocab[t] for t in tokens(text) if t in self.vocab]
            if ids:
                v = self.vectors[ids].mean(axis=0)
                norm = float(np.linalg.norm(v))
                out[i] = v / norm if norm > 0 else v
        return out

    def similarity(self, texts: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        """Cosine of the two texts' embeddings, negative values as 0."""
        a, b = self.embed(texts), self.embed(documents)
        return np.clip((a * b).sum(axis=1), 0.0, 1.0)
