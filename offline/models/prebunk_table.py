"""Each user's prebunk rumors held as arrays and read as a mapping: at 2M users a tuple per
pick (~100 bytes) would cost more than the model that chose them (decision 0061)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping

import numpy as np


class PrebunkTable(Mapping[str, list[tuple[str, float]]]):
    """user -> [(rumor id, score), ...] best first; ``users`` sorted, user i's picks at
    ``bounds[i]:bounds[i + 1]`` of ``codes`` (indices into ``rumors``) and ``scores``."""

    def __init__(
        self,
        users: list[str],
        bounds: np.ndarray,
        rumors: list[str],
        codes: np.ndarray,
        scores: np.ndarray,
    ) -> None:
        if len(bounds) != len(users) + 1 or not len(codes) == len(scores) == bounds[-1]:
            raise ValueError("prebunk table: bounds, codes and scores disagree")
        self.users, self.bounds, self.rumors = users, bounds, rumors
        self.codes, self.scores = codes, scores

    def __getitem__(self, user: str) -> list[tuple[str, float]]:
        i = bisect_left(self.users, user)
        if i == len(self.users) or self.users[i] != user:
            raise KeyError(user)
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        codes, scores = self.codes[lo:hi].tolist(), self.scores[lo:hi].tolist()
        return [(self.rumors[c], s) for c, s in zip(codes, scores, strict=True)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.users)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def pairs(self) -> int:
        """(user, rumor) picks in all."""
        return len(self.codes)
