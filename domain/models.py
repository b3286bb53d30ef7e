"""The learned models as serving reads them: the ranker's debunk side and one user's side.

A score is one dot product: user rows are ``[bias, 1, factors...]`` and debunk rows
``[1, bias, factors...]``, so ``user @ debunk`` is the ranker's logit. No model library needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

MAX_PREBUNKS = 3  # rumors kept per user (the service shows at most one)
# Debunk options per rumor whose logits are precomputed (codecs v2, PairScorer, pack_logits).
OPTION_SLOTS = 4


@dataclass(frozen=True)
class FeedModel:
    """The debunk side of the ranker for one snapshot: one row per debunk, plus cold users."""

    debunk_row: dict[str, int]
    factors: np.ndarray  # float32 (debunks, dim)
    default_user: np.ndarray  # float32 (dim,): users the ranker never saw
    weight: float = 0.9  # how much the model orders cards within one exposure strength
    meta: dict[str, Any] = field(default_factory=dict)
    # key -> (the option list it was built for, its factor rows, which options the model knows)
    _options: dict[str, tuple[Sequence[Any], list[int], tuple[bool, ...]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def user_vector(self, user: np.ndarray | None) -> np.ndarray:
        """The user's factor row, or the cold-user row when there is none (or it is stale)."""
        return self.default_user if user is None or len(user) != self.factors.shape[1] else user

    def option_rows(self, key: str, options: Sequence[Any]) -> tuple[list[int], tuple[bool, ...]]:
        """Factor rows of a fixed list of debunks (objects with ``debunk_id``, e.g. one rumor's)
        and which of them the model knows; looked up once and kept under ``key`` while the list
        object is the same."""
        cached = self._options.get(key)
        if cached is None or cached[0] is not options:
            rows = [self.debunk_row.get(d.debunk_id, -1) for d in options]
            cached = self._options[key] = (options, [max(r, 0) for r in rows],
                                           tuple(r >= 0 for r in rows))  # fmt: skip
        return cached[1], cached[2]

    def row_logits(self, rows: list[int], user: np.ndarray) -> list[float]:
        """The logits of factor ``rows`` for the user row ``user``: one matrix product."""
        # take + dot: a quarter of the cost of fancy indexing with a list, for a few rows.
        return np.dot(self.factors.take(rows, axis=0), user).tolist() if rows else []

    def logits(self, user: np.ndarray | None, debunk_ids: list[str]) -> np.ndarray:
        """The ranker's logit for each debunk (NaN for a debunk the model does not know)."""
        return np.array(self.logit_list(user, debunk_ids), dtype=np.float64)

    def logit_list(self, user: np.ndarray | None, debunk_ids: list[str]) -> list[float]:
        """``logits`` as a plain list: one matrix product, no per-item numpy (the hot path)."""
        if not debunk_ids:
            return []
        vec = self.user_vector(user)
        rows = [self.debunk_row.get(d, -1) for d in debunk_ids]
        scores = (self.factors[[max(r, 0) for r in rows]] @ vec).tolist()
        return [v if r >= 0 else math.nan for v, r in zip(scores, rows, strict=True)]


class UserModel(NamedTuple):
    """One user's side: ranker factors (None: use the default), at-risk rumors, best first, and
    (when the snapshot precomputed them) the ranker's option logits of each at-risk rumor.
    A named tuple: the service decodes one per user of every request."""

    factors: np.ndarray | None = None
    prebunks: tuple[tuple[str, float], ...] = ()
    prebunk_logits: tuple[tuple[float, ...], ...] = ()


EMPTY_USER = UserModel()
